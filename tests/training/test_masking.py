import torch

from cellshift.training.masking import choose_positions, corrupt, special_token_mask

SPECIAL = [0, 1, 2, 3]


def make_ids(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 500, (64, 400), generator=generator)
    ids[:, 0] = 2  # <cls>
    ids[::2, 300:] = 0  # padding
    return ids


def test_fifteen_percent_with_80_10_10_and_never_special_tokens():
    ids = make_ids()
    eligible = ~special_token_mask(ids, SPECIAL)
    generator = torch.Generator().manual_seed(1)
    chosen = choose_positions(eligible, 0.15, generator)
    assert not chosen[~eligible].any()
    assert abs(chosen.sum() / eligible.sum() - 0.15) < 0.01
    genes = torch.arange(4, 500)
    corrupted, labels = corrupt(ids, chosen, mask_token_id=1, gene_token_ids=genes, generator=generator)
    assert torch.equal(labels[chosen], ids[chosen]) and (labels[~chosen] == -100).all()
    assert torch.equal(corrupted[~chosen], ids[~chosen])
    n = chosen.sum().item()
    masked = (corrupted[chosen] == 1).sum().item() / n
    kept = (corrupted[chosen] == ids[chosen]).sum().item() / n
    assert abs(masked - 0.8) < 0.02
    assert abs(kept - 0.1) < 0.02  # (random draws equal to the original are rare: 1/496)
    assert not torch.isin(corrupted[chosen & (corrupted != 1)], torch.tensor(SPECIAL)).any()


def test_exact_mode_masks_a_fixed_share_of_every_cell():
    ids = make_ids()
    eligible = ~special_token_mask(ids, SPECIAL) & (torch.arange(400) < 200)
    chosen = choose_positions(eligible, 0.15, torch.Generator().manual_seed(0), exact=True)
    assert torch.equal(chosen.sum(1), torch.round(0.15 * eligible.sum(1)))
    assert not chosen[~eligible].any()
    tiny = torch.zeros(1, 5, dtype=torch.bool)
    tiny[0, 1] = True
    assert choose_positions(tiny, 0.15, torch.Generator().manual_seed(0), exact=True).sum() == 1
