"""The supervisor of `cluster up`: its backoff and give-up decisions (a table of crash times),
and what it does with processes that exit (fakes with a hand-moved clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ringstore.supervisor import (
    CrashHistory,
    GiveUp,
    Restart,
    RestartPolicy,
    Supervised,
    Supervisor,
    describe_exit,
    log_tail,
)

POLICY = RestartPolicy(first_delay=0.5, max_delay=4.0, give_up_after=5, window=100.0)


@pytest.mark.parametrize(
    ("crash_times", "decision"),
    [
        ([0], Restart(0.5, 1)),
        ([0, 1], Restart(1.0, 2)),
        ([0, 1, 2], Restart(2.0, 3)),
        ([0, 1, 2, 3], Restart(4.0, 4)),  # capped at max_delay from here on
        ([0, 1, 2, 3, 4], GiveUp(5)),
        ([0, 200], Restart(0.5, 1)),  # the first crash left the window: the backoff starts over
        ([0, 1, 2, 3, 150], Restart(0.5, 1)),
        ([0, 80, 120, 150, 170], Restart(4.0, 4)),  # the one at 0 no longer counts
    ],
)
def test_backoff_doubles_to_its_cap_and_gives_up_after_n_crashes_in_the_window(
    crash_times: list[float], decision: Restart | GiveUp
) -> None:
    history = CrashHistory(POLICY)
    for t in crash_times[:-1]:
        history.crashed(t)
    assert history.crashed(crash_times[-1]) == decision


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"first_delay": 5.0, "max_delay": 1.0}, "first_delay <= max_delay"),
        ({"first_delay": -1.0}, "first_delay"),
        ({"give_up_after": 0}, "give_up_after"),
        ({"window": 0.0}, "window"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_rule(kwargs: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


@dataclass
class FakeProcess:
    name: str
    log_path: Path
    exits: list[int] = field(default_factory=list)  # exit codes still to report, one per poll
    starts: int = 0

    @property
    def pid(self) -> int | None:
        return 1000 + self.starts

    def returncode(self) -> int | None:
        return self.exits.pop(0) if self.exits else None


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def _supervised(tmp_path: Path) -> tuple[Supervisor, dict[str, FakeProcess], list[str], Clock]:
    meta = FakeProcess("metanode", tmp_path / "metanode.log")
    gateway = FakeProcess("gateway", tmp_path / "gateway.log")
    procs = {"metanode": meta, "gateway": gateway}
    reports: list[str] = []
    clock = Clock()

    def start(proc: Supervised) -> None:
        assert isinstance(proc, FakeProcess)
        proc.starts += 1

    sup = Supervisor(procs, start, lambda m, w: reports.append(m), POLICY, clock)
    return sup, procs, reports, clock


def test_a_killed_service_is_restarted_after_its_backoff_and_reported(tmp_path: Path) -> None:
    sup, procs, reports, clock = _supervised(tmp_path)
    procs["metanode"].exits = [-9]
    sup.poll()
    assert reports == [
        f"metanode exited (killed by SIGKILL); restarting it in 0.5s (exit 1 in 100s; see "
        f"{tmp_path / 'metanode.log'})"
    ]
    clock.now = 0.4
    sup.poll()
    assert procs["metanode"].starts == 0  # not before its delay
    clock.now = 0.5
    sup.poll()
    assert procs["metanode"].starts == 1 and procs["gateway"].starts == 0
    assert reports[-1] == "metanode restarted (pid 1001)"
    assert sup.restarts == 1


def test_a_crash_looping_service_is_left_down_with_its_log_tail_the_rest_keeps_running(
    tmp_path: Path,
) -> None:
    sup, procs, reports, clock = _supervised(tmp_path)
    (tmp_path / "metanode.log").write_text(
        "".join(f"line {i}\n" for i in range(100)) + "ringstore-metanode exiting: cannot start\n"
    )
    for _ in range(POLICY.give_up_after):
        procs["metanode"].exits = [2]
        sup.poll()  # the exit
        clock.now += POLICY.max_delay
        sup.poll()  # the restart
    assert procs["metanode"].starts == POLICY.give_up_after - 1
    assert sup.given_up == {"metanode"}
    last = reports[-1]
    assert last.startswith("metanode exited (exit code 2), its 5th exit in 100s: not restarting")
    assert last.endswith("line 99\nringstore-metanode exiting: cannot start")
    assert "line 79" not in last  # only the tail
    procs["gateway"].exits = [1]  # the others are still watched
    sup.poll()
    clock.now += 1
    sup.poll()
    assert procs["gateway"].starts == 1


def test_describe_exit() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(0) == "exit code 0"


def test_log_tail_of_a_missing_file_says_so(tmp_path: Path) -> None:
    assert "cannot read" in log_tail(tmp_path / "nope.log")
