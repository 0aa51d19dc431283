"""What a command returns, as plain JSON-shaped data (dicts, lists, str, numbers, bool, None), so every supported
azure-cli prints the same thing.

azure-cli serialises a command's result with its own ``todict``, which has read azure-mgmt-network 33.x's TypeSpec
models (their values live in a private mapping, not in ``__dict__``) three ways: 2.67 uses knack's ``todict``, which
reads ``__dict__`` and makes every such model ``{}`` (``list`` printed ``[{}, {}]``); later releases took the
model's ``as_dict()`` (wire names, ``properties`` nested: azure-cli pull request 30339), then walked its attributes
(pull request 31775; 2.91). ``plain`` is that newest ``todict`` (azure-cli-core ``azure/cli/core/util.py``,
``todict``, with ``remove_additional_prop_layer`` from ``commands/__init__.py``), applied before a result leaves the
command: keys are the models' attribute names in camelCase (``privateIpAllocationMethod``, not the wire's
``privateIPAllocationMethod``), a flattened ``properties`` is lifted into its parent, and None values stay.

The TypeSpec walk mirrors azure-core's ``azure.core.serialization.attribute_list`` and ``get_backcompat_attr_name``
(azure-core 1.35+) on the model's own field table, because an older az ships an older azure-core that lacks them
and its copy is the one an extension imports. Pure; imports nothing from azure."""

import datetime
import enum
import re

_CAMEL = re.compile('_([a-z])')


def camel_case(name):
    """knack.util.to_camel_case: ``enable_ip_connect`` -> ``enableIpConnect``."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def plain(obj):
    """``obj`` (SDK models, lists of them, enums, dates, dicts of those) as plain JSON-shaped data."""
    # pylint: disable=too-many-return-statements
    if isinstance(obj, dict):
        return {key: plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(item) for item in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (datetime.date, datetime.time)):  # datetime is a date
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return str(obj)
    if isinstance(obj, (str, bytes, int, float, bool)) or obj is None:
        return obj
    if getattr(obj, '_is_model', False):
        return {camel_case(_tsp_name(obj, attr)): plain(getattr(obj, attr))
                for attr in _attributes(obj) if hasattr(obj, attr)}
    if hasattr(obj, '_asdict'):
        return plain(obj._asdict())
    if hasattr(obj, '__iter__') and hasattr(obj, '__next__'):  # a pager (ItemPaged) or a generator
        return [plain(item) for item in obj]
    if hasattr(obj, '__dict__'):
        return _without_additional_layer(obj, {camel_case(key): plain(value) for key, value in vars(obj).items()
                                               if not callable(value) and not key.startswith('_')})
    return obj


def command_result(result):
    """Every command's ``transform`` (set once, on the command type in __init__.py): its result as plain data. A
    poller passes through untouched: azure-cli waits on it after the transform (AzCliCommandInvoker._run_job)."""
    if type(result).__name__ in ('LROPoller', 'AAZLROPoller'):
        return result
    return plain(result)


def _without_additional_layer(obj, converted):
    """msrest models keep unknown wire fields in ``additional_properties``; azure-cli lifts them into the parent."""
    if 'additionalProperties' in converted and isinstance(getattr(obj, 'additional_properties', None), dict):
        converted.update(converted.pop('additionalProperties'))
    return converted


# -- TypeSpec models (azure-mgmt-network 33.x): the generated model base's field table ----------------------
# pylint: disable=protected-access  # the field table is the only description of a TypeSpec model's attributes

def _fields(model_or_type):
    return getattr(model_or_type, '_attr_to_rest_field', {})


def _flattened(obj):
    """The attribute whose model's fields are lifted into ``obj`` (``properties``), or None."""
    marker = next((name for name in dir(obj) if '__flattened_items' in name), None)
    flattened_items = getattr(obj, marker, None) if marker else None
    if not flattened_items:
        return None
    for attr, rest_field in _fields(obj).items():
        if set(_fields(getattr(rest_field, '_class_type', None))).intersection(flattened_items):
            return attr
    return None


def _attributes(obj):
    """azure.core.serialization.attribute_list: the model's attributes, a flattened one's fields in its place."""
    flattened = _flattened(obj)
    names = []
    for attr, rest_field in _fields(obj).items():
        if attr == flattened:
            names.extend(_fields(rest_field._class_type))
        else:
            names.append(attr)
    return names


def _tsp_name(obj, attr):
    """azure.core.serialization.get_backcompat_attr_name: the original TypeSpec name where it was renamed."""
    flattened = _flattened(obj)
    for field_attr, rest_field in _fields(obj).items():
        if field_attr == attr:
            return getattr(rest_field, '_original_tsp_name', None) or attr
        if field_attr == flattened:
            inner = _fields(rest_field._class_type).get(attr)
            if inner is not None:
                return getattr(inner, '_original_tsp_name', None) or attr
    return attr
