"""Diagrams: padding, lists, moves and validation."""

import pytest
import torch

from torchtopo import Diagrams, rips_persistence


def test_from_list_pads_and_to_list_round_trips():
    h0 = [torch.tensor([[0.0, 1.0], [0.0, 2.0]]), torch.zeros(0, 2), torch.tensor([[0.0, 0.5]])]
    h1 = [torch.zeros(0, 2), torch.tensor([[1.0, 1.5]]), torch.zeros(0, 2)]
    dgm = Diagrams.from_list([h0, h1])
    assert dgm.max_dim == 1 and dgm.batch_size == 3 and dgm.is_batched
    assert dgm.pairs[0].shape == (3, 2, 2) and dgm.pairs[1].shape == (3, 1, 2)
    assert dgm.mask[0].tolist() == [[True, True], [False, False], [True, False]]
    for original, back in zip(h0 + h1, dgm.to_list(0) + dgm.to_list(1)):
        assert torch.equal(original, back)
    assert (dgm.birth_edges[0] == -1).all()  # generators are unknown for user-made diagrams


def test_persistence_is_zero_on_padding():
    dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0], [0.5, 2.0]]), torch.tensor([[0.0, 3.0]])]])
    assert dgm.persistence(0).tolist() == [[1.0, 1.5], [3.0, 0.0]]


def test_to_moves_and_casts_pairs_only():
    dgm = rips_persistence(torch.randn(2, 8, 3), 1).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in dgm.pairs)
    assert all(m.dtype == torch.bool for m in dgm.mask)
    assert all(e.dtype == torch.long for e in dgm.birth_edges + dgm.death_edges)


def test_detach_and_unbatch():
    points = torch.randn(1, 6, 2, requires_grad=True)
    dgm = rips_persistence(points, 0)
    assert dgm.pairs[0].requires_grad and not dgm.detach().pairs[0].requires_grad
    single = dgm.unbatch()
    assert not single.is_batched and torch.equal(single.pairs[0], dgm.pairs[0][0])
    with pytest.raises(ValueError, match="exactly one"):
        rips_persistence(torch.randn(2, 6, 2), 0).unbatch()


@pytest.mark.parametrize("backend", ["native", "gudhi"])
def test_generators_index_the_edges_whose_lengths_are_the_values(backend):
    points = torch.randn(4, 40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dgm = rips_persistence(points, 1, backend=backend)
    for d in (0, 1):
        for b in range(4):
            m = dgm.mask[d][b]
            for column, edges in ((0, dgm.birth_edges[d][b][m]), (1, dgm.death_edges[d][b][m])):
                lengths = (points[b, edges[:, 0]] - points[b, edges[:, 1]]).norm(dim=-1)
                assert torch.allclose(lengths, dgm.pairs[d][b][m][:, column])


@pytest.mark.parametrize(
    "fields,match",
    [
        (dict(pairs=(torch.zeros(2, 3),), mask=(torch.zeros(2, 3, dtype=torch.bool),)), "pairs"),
        (dict(pairs=(torch.zeros(2, 3, 2),), mask=(torch.zeros(2, 3),)), "mask"),
        (dict(pairs=(torch.zeros(2, 3, 2), torch.zeros(2, 1, 2)), mask=(torch.zeros(2, 3, dtype=torch.bool),)), "one entry"),
    ],
)
def test_invalid_fields_raise(fields, match):
    edges = tuple(torch.full(p.shape, -1) for p in fields["pairs"])
    with pytest.raises(ValueError, match=match):
        Diagrams(fields["pairs"], fields["mask"], edges, edges)


def test_from_list_rejects_ragged_dimensions():
    with pytest.raises(ValueError, match="same number of clouds"):
        Diagrams.from_list([[torch.zeros(0, 2)], [torch.zeros(0, 2), torch.zeros(0, 2)]])


def test_from_list_gradients_reach_every_entry_and_dtypes_promote():
    h1 = [torch.tensor([[0.0, 1.0], [0.5, 2.0]], requires_grad=True), torch.zeros(0, 2, dtype=torch.float64),
          torch.tensor([[1.0, 3.0]], requires_grad=True)]
    dgm = Diagrams.from_list([h1])
    assert dgm.dtype == torch.float64 and dgm.pairs[0].shape == (3, 2, 2)
    (dgm.pairs[0] * torch.arange(12.0, dtype=torch.float64).reshape(3, 2, 2)).sum().backward()
    assert h1[0].grad.tolist() == [[0.0, 1.0], [2.0, 3.0]] and h1[2].grad.tolist() == [[8.0, 9.0]]
    assert Diagrams.from_list([h1], dtype=torch.float32).dtype == torch.float32
    empty = Diagrams.from_list([[], []])
    assert empty.batch_size == 0 and empty.pairs[1].shape == (0, 0, 2) and empty.dtype == torch.float32


@pytest.mark.parametrize(
    "entry, error, match",
    [
        (torch.zeros(1, 2, dtype=torch.long), TypeError, r"diagrams\[1\]\[1\] must be a floating-point"),
        ([[0.0, 1.0]], TypeError, r"diagrams\[1\]\[1\] must be a torch.Tensor"),
        (torch.zeros(0), ValueError, r"diagrams\[1\]\[1\] must be a \(k, 2\) tensor, got shape \(0,\)"),
        (torch.zeros(2, 3), ValueError, r"diagrams\[1\]\[1\] must be a \(k, 2\) tensor, got shape \(2, 3\)"),
        (torch.zeros(1, 2, device="meta"), ValueError, r"diagrams\[1\]\[1\] is on the 'meta' device"),
    ],
)
def test_from_list_names_the_first_bad_entry(entry, error, match):
    good = [torch.zeros(1, 2), torch.zeros(0, 2), torch.zeros(2, 2)]
    with pytest.raises(error, match=match):
        Diagrams.from_list([good, [good[0], entry, torch.zeros(3)]])


def test_cat_equals_diagrams_of_the_joined_batch():
    # Rips diagrams of two batches, joined, equal the diagrams of the whole batch computed at
    # once (as multisets per cloud: the padding widths differ).
    points = torch.randn(5, 12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    whole = rips_persistence(points, 1)
    joined = Diagrams.cat([rips_persistence(points[:2], 1), rips_persistence(points[2:], 1)])
    assert joined.batch_size == 5
    for d in (0, 1):
        for a, b in zip(whole.to_list(d), joined.to_list(d)):
            assert torch.equal(a, b)
        m = joined.mask[d]
        assert (joined.pairs[d][~m] == 0).all() and (joined.birth_edges[d][~m] == -1).all()
        assert (joined.death_edges[d][~m] == -1).all()


def test_cat_refuses_mismatched_entries():
    one = rips_persistence(torch.randn(2, 5, 2), 1)
    with pytest.raises(ValueError, match="same dimensions"):
        Diagrams.cat([one, rips_persistence(torch.randn(2, 5, 2), 0)])
    with pytest.raises(ValueError, match="batched"):
        Diagrams.cat([one, rips_persistence(torch.randn(5, 2), 1)])
    with pytest.raises(TypeError, match="sequence of Diagrams"):
        Diagrams.cat([])


def test_dict_form_survives_a_safe_torch_save(tmp_path):
    dgm = rips_persistence(torch.randn(3, 10, 2), 1)
    torch.save(dgm.to_dict(), tmp_path / "d.pt")
    back = Diagrams.from_dict(torch.load(tmp_path / "d.pt", weights_only=True))
    for name in ("pairs", "mask", "birth_edges", "death_edges"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(dgm, name), getattr(back, name)))
    with pytest.raises(ValueError, match="exactly the keys"):
        Diagrams.from_dict({"pairs": list(dgm.pairs)})


# --------------------------------------------------------------------------- pixel generators
def _cubical(batch: int, seed: int) -> Diagrams:
    from torchtopo import cubical_persistence

    return cubical_persistence(torch.rand(batch, 9, 9, generator=torch.Generator().manual_seed(seed)), 1)


def test_rips_diagrams_carry_edges_and_cubical_ones_pixels():
    rips = rips_persistence(torch.randn(2, 6, 2), 1)
    assert rips.birth_pixels is None and rips.death_pixels is None and rips.birth_edges is not None
    cubical = _cubical(2, 0)
    assert cubical.birth_edges is None and cubical.death_edges is None
    assert all(p.shape == m.shape and p.dtype == torch.long for p, m in zip(cubical.birth_pixels, cubical.mask))
    assert "H1" in repr(cubical)


def test_cat_moves_and_dict_forms_of_cubical_diagrams(tmp_path):
    parts = [_cubical(2, 1), _cubical(3, 2)]
    joined = Diagrams.cat(parts)
    for d in (0, 1):
        m = joined.mask[d]
        assert (joined.birth_pixels[d][~m] == -1).all() and (joined.death_pixels[d][~m] == -1).all()
        rows = [t for part in parts for t in part.to_list(d)]
        assert all(torch.equal(a, b) for a, b in zip(joined.to_list(d), rows))
    state = joined.to_dict()
    assert sorted(state) == ["birth_pixels", "death_pixels", "mask", "pairs"]
    torch.save(state, tmp_path / "c.pt")
    back = Diagrams.from_dict(torch.load(tmp_path / "c.pt", weights_only=True))
    for name in ("pairs", "mask", "birth_pixels", "death_pixels"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(joined, name), getattr(back, name)))
    assert back.birth_edges is None
    moved = joined.to(torch.float64).detach()
    assert moved.pairs[0].dtype == torch.float64 and moved.birth_pixels[0].dtype == torch.long
    single = parts[0].to_list(1)
    one = Diagrams.cat([_cubical(1, 1)]).unbatch()
    assert one.birth_pixels[1].dim() == 1 and torch.equal(one.to_list(1)[0], single[0])


def test_cat_refuses_rips_and_cubical_together():
    with pytest.raises(ValueError, match="same generators"):
        Diagrams.cat([rips_persistence(torch.randn(2, 5, 2), 1), _cubical(2, 3)])


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(birth_pixels=None), "both be given"),
        (dict(death_pixels=(torch.zeros(2, 3, dtype=torch.long),)), "death_pixels\\[0\\] must be a long tensor"),
        (dict(birth_pixels=(torch.zeros(2, 5, dtype=torch.long),)), "birth_pixels\\[0\\]"),
        (dict(birth_pixels=(torch.zeros(2, 4),)), "long"),
        (dict(birth_edges=(torch.zeros(2, 4, 2, dtype=torch.long),),
              death_edges=(torch.zeros(2, 4, 2, dtype=torch.long),)), "not both"),
        (dict(pairs=None), "required"),
    ],
)
def test_invalid_pixel_generators_raise(change, match):
    fields = dict(pairs=(torch.zeros(2, 4, 2),), mask=(torch.zeros(2, 4, dtype=torch.bool),),
                  birth_pixels=(torch.full((2, 4), -1),), death_pixels=(torch.full((2, 4), -1),))
    Diagrams(**fields)  # valid as given
    with pytest.raises(ValueError, match=match):
        Diagrams(**{**fields, **change})


def test_from_dict_accepts_the_four_keys_of_older_files_and_refuses_unknown_keys():
    dgm = rips_persistence(torch.randn(2, 5, 2), 1)
    state = {name: list(getattr(dgm, name)) for name in ("pairs", "mask", "birth_edges", "death_edges")}
    assert torch.equal(Diagrams.from_dict(state).death_edges[1], dgm.death_edges[1])
    with pytest.raises(ValueError, match="exactly the keys"):
        Diagrams.from_dict({**state, "weights": list(dgm.pairs)})
