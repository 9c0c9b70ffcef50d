"""bench/s3tests/groups.py: the groups docs/s3-compatibility.md reports and the JUnit tally."""

from pathlib import Path

import pytest

from bench.s3tests import groups


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("test_bucket_listv2_continuationtoken", "listing"),
        ("test_object_copy_16m", "copy"),
        ("test_multipart_copy_invalid_range", "multipart"),
        ("test_ranged_request_invalid_range", "range"),
        ("test_versioning_copy_obj_version", "versioning"),
        ("test_multipart_put_current_object_if_none_match", "conditional"),
        ("test_get_object_ifmodifiedsince_good", "conditional"),
        ("test_cors_presigned_get_object", "cors"),
        ("test_cors_presigned_put_object_with_acl", "unclaimed"),
        ("test_object_raw_get_x_amz_expires_out_max_range", "presigned"),
        ("test_multipart_use_cksum_helper_crc32c", "checksum"),
        ("test_object_write_cache_control", "metadata"),
        ("test_object_lock_put_obj_lock", "unclaimed"),
        ("s3tests/functional/test_s3.py::test_bucket_create_exists", "object"),
    ],
)
def test_group_of(name: str, group: str) -> None:
    assert groups.group_of(name) == group


def test_select_refuses_an_unknown_group() -> None:
    with pytest.raises(ValueError, match="unknown group"):
        groups.select(["test_object_copy_16m"], {"copies"})


def test_select_keeps_only_the_chosen_groups() -> None:
    names = ["a::test_object_copy_16m", "a::test_bucket_list_empty", ""]
    assert groups.select(names, {"copy"}) == ["a::test_object_copy_16m"]
    assert groups.select(names, None) == names[:2]


JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest">
 <testcase classname="t" name="test_bucket_list_empty"/>
 <testcase classname="t" name="test_bucket_list_many">
  <failure message="KeyError: 'Owner'">trace</failure></testcase>
 <testcase classname="t" name="test_multipart_upload">
  <properties><property name="aborted_uploads" value="2"/></properties>
  <failure message="assert 1 == 2">trace</failure></testcase>
 <testcase classname="t" name="test_multipart_upload">
  <error message="failed on teardown with &quot;BucketNotEmpty&quot;">trace</error></testcase>
 <testcase classname="t" name="test_object_copy_16m">
  <error message="failed on setup with &quot;s3t-abc123-7 gone&quot;">trace</error></testcase>
</testsuite></testsuites>
"""


def test_tally_counts_each_test_once_with_its_worse_outcome(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    results = groups.parse_junit(str(path))
    per_group = groups.tally(results)
    assert per_group["listing"] == {"passed": 1, "failed": 1}
    assert per_group["multipart"] == {"failed": 1}
    assert per_group["copy"] == {"error": 1}
    mp = next(r for r in results if r.name == "test_multipart_upload")
    assert (mp.cause, mp.aborted_uploads) == ("assert 1 == 2", 2)
    report = groups.render(results, markdown=True)
    assert "| TOTAL | 1 | 2 | 1 | 0 | 4 |" in report
    assert 'failed on setup with "<bucket> gone"' in report
    assert "1 tests left multipart uploads open" in report
