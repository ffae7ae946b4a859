"""Spec and setting parsing: valid settings, and a precise ValueError for every bad input."""

from __future__ import annotations

import pytest

from cemnist_data.spec import CemnistSpec, config_name, parse_config_name, parse_setting


@pytest.mark.parametrize(
    ("setting", "tasks"),
    [
        ("2-2", [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]),
        ("5-1", [[0, 1, 2, 3, 4], [5], [6], [7], [8], [9]]),
        ("4-3", [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]),
        ("1-1", [[d] for d in range(10)]),
        ("6-2", [[0, 1, 2, 3, 4, 5], [6, 7], [8, 9]]),
    ],
)
def test_parse_setting(setting: str, tasks: list[list[int]]) -> None:
    assert parse_setting(setting) == tasks


def test_custom_class_order() -> None:
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert parse_setting("2-2", order) == [[9, 8], [7, 6], [5, 4], [3, 2], [1, 0]]
    spec = CemnistSpec(class_order=tuple(order))
    assert spec.seen_classes(1) == [9, 8, 7, 6]


@pytest.mark.parametrize("setting", ["2", "2-", "a-b", "0-2", "10-0", "3-2", "2-0", "-2-2", "2-2-2", ""])
def test_unknown_setting(setting: str) -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        parse_setting(setting)


@pytest.mark.parametrize("order", [[0] * 10, list(range(9)), list(range(1, 11)), [1, 0, 2, 3, 4, 5, 6, 7, 8, 8]])
def test_class_order_not_a_permutation(order: list[int]) -> None:
    with pytest.raises(ValueError, match="permutation"):
        CemnistSpec(class_order=tuple(order))


@pytest.mark.parametrize("field", ["train_per_task", "validation_per_task", "test_pool"])
@pytest.mark.parametrize("value", [0, -5])
def test_sizes_must_be_positive(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a positive integer, got {value}"):
        CemnistSpec(**{field: value})


@pytest.mark.parametrize("task", [-1, 5, 100, True, 1.0])
def test_task_out_of_range(task: object) -> None:
    with pytest.raises(ValueError, match=r"task must be an integer in \[0, 4\]"):
        CemnistSpec().check_task(task)  # type: ignore[arg-type]


def test_config_names_round_trip() -> None:
    spec = CemnistSpec()
    names = spec.config_names()
    assert names[0] == "overlap-task0" and names[-1] == "joint" and len(names) == 11
    for mode in ("overlap", "disjoint"):
        assert parse_config_name(config_name(mode, 3)) == (mode, 3)
    assert parse_config_name("joint") == ("joint", None)
    with pytest.raises(ValueError, match="unknown config"):
        parse_config_name("overlap-3")


def test_spec_dict_round_trip_and_unknown_fields() -> None:
    spec = CemnistSpec(seed=7, setting="5-1")
    assert CemnistSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown spec fields"):
        CemnistSpec.from_dict({**spec.to_dict(), "colour": "red"})
