"""Real SDK objects pointed at a local daemon, without any Daytona control plane.

``make_daytona()`` builds a ``daytona.Daytona`` the normal way (it only creates clients; it makes
no request by itself), ``make_sandbox()`` then calls the SDK's own ``Sandbox(...)`` constructor
with a hand-made ``SandboxDto`` whose ``toolbox_proxy_url`` is a :class:`harness.proxy.ToolboxProxy`
in front of the daemon, so ``sandbox.get_work_dir()``, ``sandbox.process.exec(...)`` etc. run
through the unmodified SDK code paths: the toolbox ``ApiClient`` cloned from the API client
(with its ``Authorization``, ``X-Daytona-Source``, ``X-Daytona-SDK-Version`` and ``User-Agent``
headers and retry policy), ``ToolboxApiClientProxy`` (prefixes ``/{sandboxId}``) and
``intercept_errors``.

Nothing here may reach the network:

* ``api_url`` points at a loopback port nobody listens on; no test calls a control-plane method,
  so a mistaken call fails fast with a connection error instead of going anywhere.
* The only component that would connect on its own is the Socket.IO event dispatcher which
  ``Daytona.__init__`` starts in a background thread (``SyncEventDispatcher.ensure_connected``)
  to stream sandbox state events. We neutralise exactly that by passing
  ``use_deprecated_polling=True``: ``Daytona`` then creates no dispatcher and its
  ``SyncEventSubscriptionManager(None)`` turns every ``subscribe()`` (which ``Sandbox`` calls
  before each public method) into a no-op returning ``""``. The option's DeprecationWarning is
  silenced locally. Nothing else in the SDK is patched.
* OpenTelemetry is not enabled by the harness (it would only start if the environment set
  ``DAYTONA_OTEL_ENABLED=true``; the OTLP exporter would then just fail to export).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from daytona import Daytona, DaytonaConfig, Sandbox
from daytona_api_client import Sandbox as SandboxDto
from daytona_api_client import SandboxState
from daytona_toolbox_api_client import ApiClient, Configuration

from .daemon import free_port

SDK_SOURCE = "sdk-python"


def make_daytona(api_key: str = "harness-api-key") -> Daytona:
    """``api_key`` is what the SDK sends as ``Authorization: Bearer`` (a secured daemon's token)."""
    config = DaytonaConfig(
        api_key=api_key,
        # Loopback port with no listener (see module docstring).
        api_url=f"http://127.0.0.1:{free_port()}/api",
        target="harness",
        use_deprecated_polling=True,  # no Socket.IO event dispatcher (see module docstring)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return Daytona(config)


def make_sandbox_dto(sandbox_id: str, toolbox_proxy_url: str) -> SandboxDto:
    return SandboxDto(
        id=sandbox_id,
        organization_id="harness-org",
        name=sandbox_id,
        user="daytona",
        env={},
        labels={},
        public=False,
        network_block_all=False,
        kvm=False,
        target="harness",
        cpu=1,
        gpu=0,
        memory=1,
        disk=1,
        state=SandboxState.STARTED,
        toolbox_proxy_url=toolbox_proxy_url,
    )


def make_sandbox(daytona: Daytona, toolbox_proxy_url: str, sandbox_id: str = "harness-sandbox") -> Sandbox:
    """The SDK's own ``Sandbox`` built the way ``Daytona.create/get`` build it."""
    return Sandbox(
        make_sandbox_dto(sandbox_id, toolbox_proxy_url),
        daytona._toolbox_api_client,  # noqa: SLF001 - same objects Daytona.get() passes
        daytona._sandbox_api,  # noqa: SLF001
        "python",
        subscription_manager=daytona._subscription_manager,  # noqa: SLF001
        http_client=daytona._http_client,  # noqa: SLF001
    )


def sdk_headers(daytona: Daytona) -> dict[str, str]:
    """The default headers the SDK sends on every toolbox request."""
    return dict(daytona._toolbox_api_client.default_headers)  # noqa: SLF001


def make_toolbox_client(daemon_url: str, daytona: Daytona | None = None) -> ApiClient:
    """The generated client talking to the daemon directly (host = daemon URL), with the same
    default headers the SDK would send."""
    client = ApiClient(Configuration(host=daemon_url))
    if daytona is not None:
        for k, v in sdk_headers(daytona).items():
            client.default_headers[k] = v
        client.user_agent = daytona._toolbox_api_client.user_agent  # noqa: SLF001
    return client


@dataclass
class SdkSession:
    """A proxy in front of one daemon plus the SDK objects that talk through it."""

    daytona: Daytona
    proxy: Any  # harness.proxy.ToolboxProxy
    sandbox: Sandbox
    sandbox_id: str

    def close(self) -> None:
        # The sync Daytona object has no close(); its pools are released by finalizers.
        try:
            self.daytona._http_client.close()  # noqa: SLF001
            self.daytona._toolbox_api_client.rest_client.pool_manager.clear()  # noqa: SLF001
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.proxy.stop()
