"""The DRAM plan of activations: deterministic, and tensors alive together never share bytes."""
from tcc.backends.overlay.memory import align, place_activations


def test_pinned_tensors_are_placed_in_the_plans_order_not_a_sets():
    # Keys are id()s in the compiler; a set of small ints iterates as 1, 9, the plan's order is 9, 1.
    sizes, first, last = {9: 10, 1: 10, 5: 30}, {9: 0, 1: 0, 5: 1}, {9: 2, 1: 2, 5: 2}
    offsets, total = place_activations(sizes, first, last, pinned={1, 9})
    assert offsets == {9: 0, 1: align(10), 5: 2 * align(10)}
    assert total == 2 * align(10) + align(30)


def test_tensors_alive_at_once_do_not_overlap_and_dead_ones_are_reused():
    sizes, first, last = {1: 100, 2: 100, 3: 100}, {1: 0, 2: 1, 3: 2}, {1: 1, 2: 2, 3: 3}
    offsets, total = place_activations(sizes, first, last, pinned=set())
    assert offsets[1] != offsets[2] and offsets[2] != offsets[3]
    assert offsets[3] == offsets[1]  # 1 died at step 1, before 3 is made at step 2
    assert total == 2 * align(100)
