"""Every row of the module table, against PyTorch and by finite differences."""

import pytest

from harness import (
    check_criterion_against_torch,
    check_criterion_gradcheck,
    check_module_against_torch,
    check_module_direct_calls,
    check_module_gradcheck,
    check_module_input_dtype_and_layout,
    import_torch,
)
from module_table import CRITERIONS, MODULES

torch = import_torch()

SEEDS_AND_BATCHES = [(0, 1), (1, 2), (2, 7), (3, 16)]


def module_params():
    return [
        pytest.param(case, mode, id=f"{case.name}-{mode}", marks=case.marks)
        for case in MODULES
        for mode in case.modes
    ]


@pytest.mark.parametrize("seed,batch", SEEDS_AND_BATCHES)
@pytest.mark.parametrize("case,mode", module_params())
def test_module_matches_torch(case, mode, seed, batch):
    check_module_against_torch(torch, case, seed, batch, mode)


@pytest.mark.parametrize("case,mode", module_params())
def test_module_gradcheck(case, mode):
    for seed, batch in enumerate(case.gradcheck_batches):
        check_module_gradcheck(case, seed, batch, mode)


@pytest.mark.parametrize("case,mode", module_params())
def test_module_float64_and_strided_inputs(case, mode):
    check_module_input_dtype_and_layout(case, mode)


@pytest.mark.parametrize("case,mode", module_params())
def test_module_direct_calls(case, mode):
    check_module_direct_calls(case, mode)


@pytest.mark.parametrize("seed,batch", SEEDS_AND_BATCHES)
@pytest.mark.parametrize("case", CRITERIONS, ids=str)
def test_criterion_matches_torch(case, seed, batch):
    check_criterion_against_torch(torch, case, seed, batch)


@pytest.mark.parametrize("case", CRITERIONS, ids=str)
def test_criterion_gradcheck(case):
    for seed, batch in enumerate((1, 4)):
        check_criterion_gradcheck(case, seed, batch)
