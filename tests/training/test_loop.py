import pandas as pd
import pytest

from cellshift.training.loop import LossLog, Position, is_due, optimizer_steps


def epoch_batches(epoch):
    """Five batches per epoch, named by epoch and position."""
    return [f"{epoch}.{i}" for i in range(5)]


def test_steps_take_batches_in_groups_that_never_span_two_epochs():
    position = Position()
    steps = [step.batches for step in optimizer_steps(position, 5, epoch_batches, batches_per_step=2)]
    assert steps == [["0.0", "0.1"], ["0.2", "0.3"], ["0.4"], ["1.0", "1.1"], ["1.2", "1.3"]]
    assert position == Position(step=5, epoch=1, batches_done=4)


def test_a_run_resumed_from_a_recorded_position_takes_the_batches_the_stopped_one_would_have():
    straight = [step.batches for step in optimizer_steps(Position(), 7, epoch_batches, batches_per_step=2)]
    position, taken = Position(), []
    for step in optimizer_steps(position, 7, epoch_batches, batches_per_step=2):
        taken.append(step.batches)
        if position.step == 3:  # a checkpoint written during step 3 records the step as done
            recorded = Position(**vars(position))
            break
    assert recorded == Position(step=3, epoch=0, batches_done=5)  # the epoch's end, not yet rolled over
    taken += [step.batches for step in optimizer_steps(recorded, 7, epoch_batches, batches_per_step=2)]
    assert taken == straight


def test_is_due_at_every_multiple_and_at_the_last_step():
    assert [step for step in range(1, 8) if is_due(step, 3, 7)] == [3, 6, 7]


def test_loss_log_writes_named_columns_leaves_missing_ones_empty_and_drops_rows_after_a_step(tmp_path):
    log = LossLog(tmp_path / "loss.csv", ["step", "loss", "validation_loss"], write=True)
    for step in (1, 2, 3):
        log.append({"step": step, "loss": 1.0 / step, **({"validation_loss": 0.5} if step == 2 else {})})
    table = pd.read_csv(tmp_path / "loss.csv")
    assert list(table.columns) == ["step", "loss", "validation_loss"]
    assert table["validation_loss"].isna().tolist() == [True, False, True]
    log.drop_after(2)
    assert pd.read_csv(tmp_path / "loss.csv")["step"].tolist() == [1, 2]
    with pytest.raises(KeyError, match="not among"):
        log.append({"step": 4, "lost": 0.1})
    LossLog(tmp_path / "other.csv", ["step"], write=False).append({"step": 1})  # another process writes nothing
    assert not (tmp_path / "other.csv").exists()
