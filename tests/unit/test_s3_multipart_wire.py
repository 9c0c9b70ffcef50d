"""The S3 door's multipart wire as pure functions: the copy-source range, the completion's part
list with checksums, a part read's headers, and GetObjectAttributes' document."""

from __future__ import annotations

import pytest

from gateway.model import Checksum, ObjectInfo
from gateway.multipart import PartListing
from gateway.s3 import multipart as mp
from gateway.s3.errors import InvalidRequest, MalformedXML
from ringstore.errors import InvalidArgument


def test_a_copy_source_range_is_one_range_with_both_ends() -> None:
    assert mp.copy_source_range("bytes=0-21") == (0, 21)
    improper = ["0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=hello-"]
    improper += ["bytes=0-2,3-5", "bytes=-5", "bytes=1-", "bytes=" + "9" * 21 + "-1"]
    for value in improper:
        with pytest.raises(InvalidArgument, match="must be bytes=first-last"):
            mp.copy_source_range(value)


def test_the_completion_lists_parts_with_their_checksums() -> None:
    body = (
        b"<CompleteMultipartUpload xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>"
        b'<Part><PartNumber>1</PartNumber><ETag>"e1"</ETag><ChecksumCRC32>AAAA</ChecksumCRC32>'
        b"</Part><Part><PartNumber>2</PartNumber><ETag>e2</ETag></Part></CompleteMultipartUpload>"
    )
    assert mp.completed_parts(body) == [PartListing(1, "e1", "AAAA"), PartListing(2, "e2", "")]
    with pytest.raises(MalformedXML, match="names no part"):
        mp.completed_parts(b"<CompleteMultipartUpload/>")


def multipart_info() -> ObjectInfo:
    return ObjectInfo(
        bucket="b", key="k", size=13, etag="x-2", part_sizes=(10, 3),
        part_checksums=("P1==", "P2=="),
        checksum=Checksum(algorithm="SHA256", value="W==", type="COMPOSITE"),
    )  # fmt: skip


def test_a_part_read_answers_its_range_count_and_checksum() -> None:
    info = multipart_info()
    status, headers = mp.part_read_headers(info, 2, 10, 3, with_checksum=True)
    assert status == 206
    assert headers == {
        "x-amz-mp-parts-count": "2",
        "Content-Range": "bytes 10-12/13",
        "x-amz-checksum-sha256": "P2==",
        "x-amz-checksum-type": "COMPOSITE",
    }
    single = ObjectInfo(bucket="b", key="k", size=0, etag="")
    assert mp.part_read_headers(single, 1, 0, 0, with_checksum=True) == (200, {})
    assert mp.part_number({}, {}) == 0
    with pytest.raises(InvalidRequest, match="not both"):
        mp.part_number({"partNumber": "1"}, {"range": "bytes=0-1"})
    with pytest.raises(InvalidArgument, match="partNumber '0'"):
        mp.part_number({"partNumber": "0"}, {})


def test_object_attributes_name_what_was_asked() -> None:
    info = multipart_info()
    doc = mp.object_attributes(
        info, {"x-amz-object-attributes": "ObjectParts,Checksum", "x-amz-max-parts": "1"}
    ).decode()
    assert "<ChecksumSHA256>W==-2</ChecksumSHA256>" in doc
    assert "<PartsCount>2</PartsCount>" in doc and "<IsTruncated>true</IsTruncated>" in doc
    assert "<PartNumber>1</PartNumber><Size>10</Size><ChecksumSHA256>P1==</ChecksumSHA256>" in doc
    assert "<ETag>" not in doc and "<ObjectSize>" not in doc
    with pytest.raises(InvalidArgument, match="'Owner' is not one"):
        mp.object_attributes(info, {"x-amz-object-attributes": "ETag,Owner"})
    with pytest.raises(InvalidArgument, match="must name some of"):
        mp.object_attributes(info, {})
