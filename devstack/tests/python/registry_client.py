"""Drives the devstack schema registry with Confluent's own Python client, unchanged.

Usage: registry_client.py URL

Exits 0 when every call behaves as against a real Confluent Schema Registry; otherwise prints
what differed and exits non-zero. Run by devstack/tests/registry_python.rs.
"""

import json
import sys
import traceback

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

V1 = json.dumps(
    {
        "type": "record",
        "name": "Alert",
        "namespace": "secflow.py",
        "fields": [
            {"name": "host", "type": "string"},
            {"name": "severity", "type": "int"},
        ],
    }
)
# V1 plus an optional field: backward compatible.
V2 = json.dumps(
    {
        "type": "record",
        "name": "Alert",
        "namespace": "secflow.py",
        "fields": [
            {"name": "host", "type": "string"},
            {"name": "severity", "type": "int"},
            {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
        ],
    }
)
# V1 plus a required field: not backward compatible.
BREAKING = json.dumps(
    {
        "type": "record",
        "name": "Alert",
        "namespace": "secflow.py",
        "fields": [
            {"name": "host", "type": "string"},
            {"name": "severity", "type": "int"},
            {"name": "owner", "type": "string"},
        ],
    }
)


class Mismatch(Exception):
    pass


def expect(actual, expected, what):
    if actual != expected:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")


def same_schema(actual_str, expected_str, what):
    expect(json.loads(actual_str), json.loads(expected_str), what)


def run(url):
    client = SchemaRegistryClient({"url": url})
    # A second client with empty caches, so reads really go over HTTP.
    fresh = SchemaRegistryClient({"url": url})
    subject = "py-alerts-value"

    schema_id = client.register_schema(subject, Schema(V1, "AVRO"))
    expect(isinstance(schema_id, int) and schema_id > 0, True, "register returns a positive id")
    expect(client.register_schema(subject, Schema(V1, "AVRO")), schema_id, "re-register id")
    expect(
        fresh.register_schema("py-other-value", Schema(V1, "AVRO")),
        schema_id,
        "same schema under another subject keeps the global id",
    )

    by_id = fresh.get_schema(schema_id)
    same_schema(by_id.schema_str, V1, "get_schema schema")
    expect(by_id.schema_type, "AVRO", "get_schema type")

    latest = fresh.get_latest_version(subject)
    expect((latest.schema_id, latest.version, latest.subject), (schema_id, 1, subject), "latest")
    same_schema(latest.schema.schema_str, V1, "latest schema")

    version = fresh.get_version(subject, 1)
    expect(version.schema_id, schema_id, "get_version id")

    found = fresh.lookup_schema(subject, Schema(V1, "AVRO"))
    expect((found.schema_id, found.version, found.subject), (schema_id, 1, subject), "lookup")

    try:
        fresh.lookup_schema(subject, Schema(BREAKING, "AVRO"))
        raise Mismatch("lookup of an unregistered schema succeeded")
    except SchemaRegistryError as e:
        expect((e.http_status_code, e.error_code), (404, 40403), "lookup of unregistered schema")

    expect(fresh.test_compatibility(subject, Schema(V2, "AVRO")), True, "V2 compatible")
    expect(fresh.test_compatibility(subject, Schema(BREAKING, "AVRO")), False, "BREAKING compatible")
    expect(
        fresh.test_compatibility_all_versions(subject, Schema(V2, "AVRO")),
        True,
        "V2 compatible with all versions",
    )

    try:
        fresh.register_schema(subject, Schema(BREAKING, "AVRO"))
        raise Mismatch("registering an incompatible schema succeeded")
    except SchemaRegistryError as e:
        expect((e.http_status_code, e.error_code), (409, 409), "incompatible registration")

    v2_id = client.register_schema(subject, Schema(V2, "AVRO"))
    expect(v2_id > schema_id, True, "a new schema gets a higher id")
    expect(fresh.get_versions(subject), [1, 2], "get_versions")
    expect(sorted(fresh.get_subjects()), ["py-alerts-value", "py-other-value"], "get_subjects")
    versions = fresh.get_schema_versions(schema_id)
    expect(
        sorted((v.subject, v.version) for v in versions),
        [("py-alerts-value", 1), ("py-other-value", 1)],
        "get_schema_versions",
    )
    expect(
        sorted(fresh.get_subjects_by_schema_id(schema_id)),
        ["py-alerts-value", "py-other-value"],
        "get_subjects_by_schema_id",
    )

    expect(fresh.get_compatibility(), "BACKWARD", "global compatibility")
    expect(fresh.set_compatibility(subject, "FULL"), {"compatibility": "FULL"}, "set_compatibility")
    expect(fresh.get_compatibility(subject), "FULL", "subject compatibility")

    try:
        fresh.get_version(subject, 9)
        raise Mismatch("get_version of a missing version succeeded")
    except SchemaRegistryError as e:
        expect((e.http_status_code, e.error_code), (404, 40402), "missing version")

    # Serialize and deserialize a record through the registry, Confluent wire format.
    topic = "py-events"
    serializer = AvroSerializer(client, V2, conf={"auto.register.schemas": True})
    deserializer = AvroDeserializer(fresh)
    ctx = SerializationContext(topic, MessageField.VALUE)
    record = {"host": "sensor-7", "severity": 3, "tags": ["edr", "linux"]}
    payload = serializer(record, ctx)
    expect(payload[0], 0, "magic byte")
    header_id = int.from_bytes(payload[1:5], "big")
    expect(header_id, v2_id, "schema id in the header (same schema, same global id)")
    expect(fresh.get_latest_version(f"{topic}-value").schema_id, header_id, "serializer registered")
    expect(deserializer(payload, ctx), record, "round trip")

    deleted = fresh.delete_subject("py-other-value")
    expect(deleted, [1], "delete_subject")
    same_schema(
        SchemaRegistryClient({"url": url}).get_schema(schema_id).schema_str,
        V1,
        "schema still resolvable by id after a soft delete",
    )


def main():
    if len(sys.argv) != 2:
        print("usage: registry_client.py URL", file=sys.stderr)
        return 2
    try:
        run(sys.argv[1])
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - any client error is a failure to report
        traceback.print_exc()
        return 1
    print("confluent_kafka schema registry client: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
