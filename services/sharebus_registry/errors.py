"""Typed registry errors, each carrying its Confluent error code.

The HTTP layer maps the families (not found, conflict, unprocessable...) to status codes; everything
below it raises these and never thinks about HTTP.
"""

from __future__ import annotations

from typing import ClassVar

from sharebus_core.errors import SharebusError


class RegistryError(SharebusError):
    error_code: ClassVar[int] = 50001

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RegistryError):
    pass


class SubjectNotFound(NotFound):
    error_code = 40401

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")


class VersionNotFound(NotFound):
    error_code = 40402

    def __init__(self, subject: str, version: int | str) -> None:
        super().__init__(f"Version {version} not found for subject '{subject}'.")


class SchemaNotFound(NotFound):
    error_code = 40403

    def __init__(self, schema_id: int | None = None) -> None:
        super().__init__("Schema not found" if schema_id is None else f"Schema {schema_id} not found")


class SubjectSoftDeleted(NotFound):
    error_code = 40404

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently")


class SubjectNotSoftDeleted(NotFound):
    error_code = 40405

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' was not deleted first before being permanently deleted")


class VersionSoftDeleted(NotFound):
    error_code = 40406

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"
        )


class VersionNotSoftDeleted(NotFound):
    error_code = 40407

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
        )


class SubjectLevelNotConfigured(NotFound):
    error_code = 40408

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' does not have subject-level compatibility configured")


class IncompatibleSchema(RegistryError):
    error_code = 409


class Unprocessable(RegistryError):
    pass


class InvalidSchema(Unprocessable):
    error_code = 42201


class InvalidVersion(Unprocessable):
    error_code = 42202

    def __init__(self, version: str) -> None:
        super().__init__(
            f"The specified version '{version}' is not a valid version id. "
            'Allowed values are between [1, 2^31-1] and the string "latest"'
        )


class InvalidCompatibilityLevel(Unprocessable):
    error_code = 42203

    def __init__(self, level: object) -> None:
        super().__init__(
            f"Invalid compatibility level {level!r}. Valid values are none, backward, forward, full, "
            "backward_transitive, forward_transitive, and full_transitive"
        )


class UnprocessableEntity(Unprocessable):
    """The request body is JSON, but not of the expected shape."""

    error_code = 422


class BadRequest(RegistryError):
    """The request itself is malformed (not JSON, wrong shape); Confluent answers 400 for these."""

    error_code = 400


class UnsupportedMediaType(RegistryError):
    error_code = 415


class StoreUnavailable(RegistryError):
    """The Kafka log could not be written or read back."""

    error_code = 50001


class StoreTimeout(RegistryError):
    error_code = 50002


class ImportConflict(IncompatibleSchema):
    """An import names an id this registry already holds for another schema, or one of its own range."""
