"""A few fuzzing examples in every run (bench/fuzz.py runs the same for minutes): mutated clips of five containers."""

from __future__ import annotations

import random
import resource

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import check, mutate, write_seeds


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return [(p, p.read_bytes()) for p in write_seeds(tmp_path_factory.mktemp("seeds"))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 4), partner=st.integers(0, 4), seed=st.integers(0, 2**32 - 1))
def test_mutated_clips_give_frames_or_a_clip_error_in_bounded_time_and_memory(seeds, tmp_path_factory, which, partner, seed):
    path, data = seeds[which]
    bad = tmp_path_factory.mktemp("fuzz") / path.name
    bad.write_bytes(mutate(data, random.Random(seed), seeds[partner][1]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert check(bad, timeout=5) is None
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024  # KB: no input costs half a GB
