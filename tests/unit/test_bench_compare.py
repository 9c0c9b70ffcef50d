"""bench.run's summary of issue 13: the best round per door and case, the target of each case
(2x Swift; for a PUT at most 80% of the disk's 3-replica cap) and the CPU per MiB of each role."""

from __future__ import annotations

from bench.run import Phase, Result, Workload, best_of, comparison, cpu_table, target

KiB, MiB = 1024, 1024 * 1024
SMALL = Workload("4 KiB", 4 * KiB, 16, 100, 10)
BIG = Workload("64 MiB", 64 * MiB, 2, 4, 10)


def result(door: str, w: Workload, op: str, ops: int, seconds: float, **cpu: float) -> Result:
    return Result(door, w, op, Phase(ops, seconds, [seconds / max(ops, 1)] * ops, 0), cpu)


def test_target_is_twice_swift_unless_the_disk_caps_a_put() -> None:
    assert target("GET", 224, 64 * MiB, 183) == 448  # a GET is never capped by the disk
    assert target("PUT", 63, MiB, 183) == 126  # 2x Swift is under 80% of the cap
    assert round(target("PUT", 147, 64 * MiB, 183), 1) == 146.4  # 80% of the cap
    assert target("PUT", 147, 64 * MiB, None) == 294  # no disk measured: 2x Swift
    # 4 KiB cases are in ops/s: the cap of 183 MiB/s is 37,478 ops/s of 4 KiB
    assert round(target("PUT", 131, 4 * KiB, 183)) == 262


def test_best_of_keeps_the_fastest_round_of_each_door_and_case() -> None:
    slow = result("gRPC", BIG, "PUT", 4, 4.0)
    fast = result("gRPC", BIG, "PUT", 4, 2.0)
    other = result("Swift", BIG, "PUT", 4, 3.0)
    assert best_of([slow, other, fast]) == {
        ("gRPC", "64 MiB", "PUT"): fast,
        ("Swift", "64 MiB", "PUT"): other,
    }


def test_comparison_puts_swift_beside_each_door_with_ratio_target_and_verdict() -> None:
    best = best_of([
        result("gRPC", BIG, "PUT", 4, 2.0),  # 128 MiB/s
        result("S3", BIG, "PUT", 4, 4.0),  # 64 MiB/s
        result("Swift", BIG, "PUT", 4, 2.56),  # 100 MiB/s
        result("gRPC", SMALL, "GET", 100, 0.25),  # 400 ops/s
        result("Swift", SMALL, "GET", 100, 0.5),  # 200 ops/s
    ])  # fmt: skip
    lines = comparison(best, disk_cap_mib_s=150.0)
    assert lines[0] == (
        "| case | Swift | ringstore gRPC | ratio | ringstore S3 | ratio | target | met |"
    )
    assert lines[2] == (
        "| 64 MiB c=2 PUT | 100 MiB/s | 128 MiB/s | 1.28x | 64 MiB/s | 0.64x | 120 MiB/s "
        "| gRPC yes, S3 no |"
    )
    assert lines[3] == (
        "| 4 KiB c=16 GET | 200 ops/s | 400 ops/s | 2.00x | - | - | 400 ops/s | gRPC yes |"
    )


def test_cpu_table_groups_processes_by_role_per_mib() -> None:
    ours = result("gRPC", BIG, "PUT", 4, 2.0, client=0.256, gateway=1.28, dn1=0.256, dn2=0.512,
                  dn3=0.384, metanode=0.128)  # fmt: skip
    servers = {"swift-proxy": 0.512, "swift-object-1": 0.768, "swift-account": 0.064,
               "memcached": 0.064}  # fmt: skip
    swift = result("Swift", BIG, "PUT", 4, 2.0, client=0.0, **servers)
    lines = cpu_table(best_of([ours, swift]))
    assert lines[2] == "| gRPC | 64 MiB | PUT | 1.00 | 5.00 | 1.00-2.00 | 0.50 | 11.00 | 0.704 |"
    assert lines[3] == "| Swift | 64 MiB | PUT | 0.00 | 2.00 | 3.00-3.00 | 0.50 | 5.50 | 0.352 |"
