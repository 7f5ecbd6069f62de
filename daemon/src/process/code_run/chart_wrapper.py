# Chart wrapper for code-run.
#
# The daemon runs this program instead of Python code that imports matplotlib, with the user
# code prepended as `_DTN_CODE = "<base64>"`. It runs that code as `__main__` and, each time the
# code calls `matplotlib.pyplot.show()`, prints one line per open figure not reported before:
#
#     dtn_artifact_k39fd2:{"type": "chart", "value": <chart>}
#
# The daemon removes these lines from the output and decodes <chart> into its Chart schema
# (every value type below is what the clients validate: strings, numbers, number lists; a bar's
# `value` is a string). Nothing here may break the user's program: a figure that cannot be
# described is skipped.

import base64 as _base64
import hashlib as _hashlib
import io as _io
import json as _json
import sys as _sys


def _dtn_main(encoded):
    import builtins
    import importlib.abc
    import importlib.util
    import linecache
    import traceback
    import types

    filename = "<target_code>"
    source = _base64.b64decode(encoded).decode("utf-8")

    class PyplotLoader(importlib.abc.Loader):
        """Loads pyplot as usual, then installs the chart reporting into it."""

        def __init__(self, inner):
            self.inner = inner

        def create_module(self, spec):
            return self.inner.create_module(spec)

        def exec_module(self, module):
            self.inner.exec_module(module)
            _install(module)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    class PyplotFinder(importlib.abc.MetaPathFinder):
        """Notices the first import of matplotlib.pyplot, however the code spells it."""

        def find_spec(self, name, path=None, target=None):
            if name != "matplotlib.pyplot":
                return None
            _sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.loader is not None:
                spec.loader = PyplotLoader(spec.loader)
            return spec

    _sys.meta_path.insert(0, PyplotFinder())

    # The user code's source, so that its traceback shows the failing lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError:
        traceback.print_exc(limit=0)
        _sys.exit(1)
    # This program's own module stays alive (its functions run later, from pyplot.show).
    wrapper = _sys.modules["__main__"]  # noqa: F841
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    _sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001 - reported like Python does, minus our frames
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != filename:
            tb = tb.tb_next
        traceback.print_exception(type(error), error, tb)
        _sys.exit(1)


def _install(plt):
    """Replaces pyplot.show with a version that reports the open figures first."""
    import inspect
    import warnings

    import matplotlib.axes

    marker = "dtn_artifact_k39fd2:"
    seen = set()
    original_show = plt.show
    original_bxp = matplotlib.axes.Axes.bxp

    def bxp(self, bxpstats, *args, **kwargs):
        # Box plots are recorded where they are drawn: their statistics cannot be read back
        # reliably from the lines and patches afterwards.
        artists = original_bxp(self, bxpstats, *args, **kwargs)
        try:
            bound = inspect.signature(original_bxp).bind(self, bxpstats, *args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            horizontal = arguments.get("orientation") == "horizontal" or arguments.get("vert") is False
            stats = list(bxpstats)
            positions = arguments.get("positions")
            positions = list(positions) if positions is not None else list(range(1, len(stats) + 1))
            record = getattr(self, "_dtn_boxes", None)
            if record is None:
                record = []
                self._dtn_boxes = record
            for index, (stat, position) in enumerate(zip(stats, positions)):
                medians = artists.get("medians") or []
                record.append(
                    {
                        "stats": stat,
                        "position": position,
                        "horizontal": horizontal,
                        "witness": medians[index] if index < len(medians) else None,
                    }
                )
        except Exception:  # noqa: BLE001 - never break the user's plot
            pass
        return artists

    matplotlib.axes.Axes.bxp = bxp

    def show(*args, **kwargs):
        for number in plt.get_fignums():
            try:
                _report(plt.figure(number), seen, marker)
            except Exception:  # noqa: BLE001 - a figure we cannot describe is skipped
                pass
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*non-GUI backend.*")
                warnings.filterwarnings("ignore", message=".*cannot be shown.*")
                return original_show(*args, **kwargs)
        finally:
            plt.close("all")

    show.__doc__ = original_show.__doc__
    show.__wrapped__ = original_show
    plt.show = show


def _report(fig, seen, marker):
    preview = _io.BytesIO()
    fig.savefig(preview, format="png", dpi=50)  # also draws, which fills in the tick labels
    digest = _hashlib.sha256(preview.getvalue()).hexdigest()
    if digest in seen:
        return
    seen.add(digest)
    chart = _describe_figure(fig)
    chart["png"] = _png(fig)
    line = _json.dumps({"type": "chart", "value": chart}, allow_nan=False, separators=(",", ":"))
    out = _sys.__stdout__
    out.write(marker + line + "\n")
    out.flush()


def _png(fig):
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = buffer.getvalue()
    try:
        from PIL import Image

        smaller = _io.BytesIO()
        Image.open(_io.BytesIO(data)).save(smaller, format="PNG", optimize=True, compress_level=9)
        data = smaller.getvalue()
    except Exception:  # noqa: BLE001 - PIL is optional; matplotlib's PNG is fine too
        pass
    return _base64.b64encode(data).decode("ascii")


# ----------------------------------------------------------------------------- description


def _describe_figure(fig):
    axes = [ax for ax in fig.axes if _is_chart_axes(ax)]
    if not axes:
        return {"type": "unknown"}
    suptitle = _suptitle(fig)
    if len(axes) == 1:
        chart = _describe_axes(axes[0])
        if not chart.get("title") and suptitle:
            chart["title"] = suptitle
        return chart
    return {
        "type": "composite_chart",
        "title": suptitle,
        "elements": [_describe_axes(ax) for ax in axes],
    }


def _suptitle(fig):
    text = getattr(fig, "_suptitle", None)
    return text.get_text() if text is not None and text.get_text() else None


def _is_chart_axes(ax):
    # Colour bars are axes too, and `plt.title()` alone creates an empty one.
    if getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>":
        return False
    return ax.has_data() or bool(_boxes(ax))


def _describe_axes(ax):
    kind, elements, swap_labels = _elements(ax)
    x_label, y_label = ax.get_xlabel(), ax.get_ylabel()
    if swap_labels:
        x_label, y_label = y_label, x_label
    chart = {"type": kind, "title": ax.get_title(), "x_label": x_label, "y_label": y_label}
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        ticks, labels = _ticks(axis)
        chart[name + "_ticks"] = ticks
        chart[name + "_tick_labels"] = labels
        chart[name + "_scale"] = _scale(axis, ticks, labels)
    chart["elements"] = elements
    return chart


def _elements(ax):
    """(type, elements, whether x/y labels swap so x_label names the category axis)."""
    from matplotlib.collections import PathCollection
    from matplotlib.container import BarContainer
    from matplotlib.patches import Shadow, Wedge

    boxes = _boxes(ax)
    if boxes:
        horizontal = all(box["horizontal"] for box in boxes)
        return "box_and_whisker", [_box_element(ax, box) for box in boxes], horizontal

    lines = list(ax.lines)
    # A drop shadow (`pie(shadow=True)` adds one per wedge) is decoration, not data.
    patches = [p for p in ax.patches if not isinstance(p, Shadow)]
    collections = list(ax.collections)
    data_lines = [line for line in lines if not _is_reference_line(ax, line)]

    if patches and not lines and not collections and all(isinstance(p, Wedge) for p in patches):
        return "pie", [_wedge_element(w) for w in patches], False

    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    if bars:
        bar_patches = {id(p) for c in bars for p in c.patches}
        errorbar_parts = set()
        for container in bars:
            errorbar = getattr(container, "errorbar", None)
            for part in _flatten(errorbar.lines if errorbar is not None else ()):
                errorbar_parts.add(id(part))
        others = [a for a in data_lines + collections if id(a) not in errorbar_parts]
        if not others and all(id(p) in bar_patches for p in patches):
            horizontal = all(_bar_horizontal(c) for c in bars)
            elements = [e for c in bars for e in _bar_elements(ax, c)]
            return "bar", elements, horizontal

    if collections and not data_lines and not patches and all(
        isinstance(c, PathCollection) for c in collections
    ):
        return "scatter", [_scatter_element(ax, c) for c in collections], False

    if lines and not collections and not patches:
        return "line", [_line_element(ax, line) for line in lines], False

    return "unknown", [], False


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        elif item is not None:
            yield item


def _is_reference_line(ax, line):
    """axhline/axvline-style lines: two points, drawn partly in axes coordinates."""
    return len(line.get_xdata()) == 2 and line.get_transform() != ax.transData


def _label(artist):
    label = artist.get_label()
    return "" if label is None or str(label).startswith("_") else str(label)


def _finite(*values):
    import math

    return all(isinstance(v, float) and math.isfinite(v) for v in values)


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if _finite(value) else None


def _number_text(value):
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _points(ax, xy):
    import numpy as np

    data = np.ma.filled(np.ma.asarray(xy, dtype=float), np.nan)
    to_x = _axis_values(ax.xaxis)
    to_y = _axis_values(ax.yaxis)
    points = []
    for x, y in data.reshape(-1, 2).tolist():
        if _finite(x, y):
            points.append([to_x(x), to_y(y)])
    return points


def _line_element(ax, line):
    return {"label": _label(line), "points": _points(ax, line.get_xydata())}


def _scatter_element(ax, collection):
    return {"label": _label(collection), "points": _points(ax, collection.get_offsets())}


def _wedge_element(wedge):
    return {
        "label": _label(wedge),
        "angle": abs(float(wedge.theta2) - float(wedge.theta1)),
        "radius": float(wedge.r),
    }


def _bar_horizontal(container):
    orientation = getattr(container, "orientation", None)
    if orientation is not None:
        return orientation == "horizontal"
    # Older matplotlib: horizontal bars share one height.
    heights = {round(p.get_height(), 12) for p in container.patches}
    return len(container.patches) > 1 and len(heights) == 1


def _bar_elements(ax, container):
    horizontal = _bar_horizontal(container)
    values = getattr(container, "datavalues", None)
    if values is None:
        values = [p.get_width() if horizontal else p.get_height() for p in container.patches]
    elements = []
    for patch, value in zip(container.patches, values):
        if horizontal:
            center, axis = patch.get_y() + patch.get_height() / 2, ax.yaxis
        else:
            center, axis = patch.get_x() + patch.get_width() / 2, ax.xaxis
        number = _number(value)
        elements.append(
            {
                "label": _category(axis, center),
                "group": _label(container),
                # A string: the clients type a bar's value as text.
                "value": _number_text(number) if number is not None else "",
            }
        )
    return elements


def _boxes(ax):
    boxes = getattr(ax, "_dtn_boxes", None) or []
    # Only boxes still on the axes (not cleared since).
    return [b for b in boxes if b["witness"] is None or b["witness"] in ax.lines]


def _box_element(ax, box):
    stats = box["stats"]
    label = stats.get("label")
    if label is None:
        label = _category(ax.yaxis if box["horizontal"] else ax.xaxis, box["position"])
    element = {"label": str(label)}
    for key, name in (
        ("whislo", "min"),
        ("q1", "first_quartile"),
        ("med", "median"),
        ("q3", "third_quartile"),
        ("whishi", "max"),
    ):
        number = _number(stats.get(key))
        if number is not None:
            element[name] = number
    outliers = [_number(v) for v in (stats.get("fliers") if stats.get("fliers") is not None else [])]
    element["outliers"] = [v for v in outliers if v is not None]
    return element


# ------------------------------------------------------------------------------------ axes


def _converter(axis):
    getter = getattr(axis, "get_converter", None)
    return getter() if getter is not None else getattr(axis, "converter", None)


def _is_date(axis):
    import matplotlib.dates as mdates

    converter = _converter(axis)
    if converter is not None and "Date" in type(converter).__name__:
        return True
    formatter = axis.get_major_formatter()
    return isinstance(
        formatter, (mdates.DateFormatter, mdates.AutoDateFormatter, mdates.ConciseDateFormatter)
    )


def _is_category(axis):
    return _converter(axis) is not None and "Category" in type(_converter(axis)).__name__


def _axis_values(axis):
    """How to turn an axis' data values into what is reported: dates as Unix seconds (the
    clients take numbers only), anything else as is."""
    if not _is_date(axis):
        return lambda v: v
    import matplotlib.dates as mdates

    def seconds(value):
        try:
            return mdates.num2date(value).timestamp()
        except (ValueError, OverflowError):
            return value

    return seconds


def _ticks(axis):
    convert = _axis_values(axis)
    ticks, labels = [], []
    locations = list(axis.get_ticklocs())
    texts = [t.get_text() for t in axis.get_ticklabels()]
    for index, location in enumerate(locations):
        number = _number(location)
        if number is None:
            continue
        ticks.append(_number(convert(number)) or 0.0)
        labels.append(texts[index] if index < len(texts) else "")
    return ticks, labels


def _scale(axis, ticks, labels):
    if _is_date(axis):
        return "datetime"
    scale = axis.get_scale()
    if scale != "linear":
        return scale
    if _is_category(axis):
        return "categorical"
    if ticks and all(t == i for i, t in enumerate(ticks)) and any(
        not _same_number(label, tick) for label, tick in zip(labels, ticks)
    ):
        return "categorical"
    return "linear"


def _same_number(text, number):
    try:
        return float(text.replace("\u2212", "-")) == number
    except ValueError:
        return False


def _category(axis, position):
    """The tick text at `position` on `axis`, else the category there, else the number."""
    texts = [t.get_text() for t in axis.get_ticklabels()]
    for location, text in zip(axis.get_ticklocs(), texts):
        if abs(float(location) - float(position)) < 1e-9 and text:
            return text
    units = getattr(axis, "units", None)
    mapping = getattr(units, "_mapping", None)
    if mapping:
        for name, index in mapping.items():
            if abs(float(index) - float(position)) < 1e-9:
                return str(name)
    return _number_text(position)


_dtn_main(_DTN_CODE)  # noqa: F821 - defined by the line the daemon puts first
