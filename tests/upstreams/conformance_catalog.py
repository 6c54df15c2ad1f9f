"""What the MCP conformance suite's server scenarios ask for, as data: the tools (with the
names and input schemas the suite calls), the elicitation schemas, the resources and the
template, the prompts and the completion values. tests/upstreams/conformance_server.py
serves them.

Owns: names, schemas, fixed contents. Never: behaviour (that is the server's).
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

# A 1x1 PNG and a silent WAV, as the scenarios ask for ("a minimal test image/audio").
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}


def _one_string(name: str, description: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string", "description": description}}, "required": [name]}


TOOLS = [
    types.Tool(name="test_simple_text", description="Returns one text block.", input_schema=NO_ARGS),
    types.Tool(name="test_image_content", description="Returns a PNG image.", input_schema=NO_ARGS),
    types.Tool(name="test_audio_content", description="Returns a WAV audio clip.", input_schema=NO_ARGS),
    types.Tool(name="test_embedded_resource", description="Returns an embedded resource.", input_schema=NO_ARGS),
    types.Tool(
        name="test_multiple_content_types", description="Returns text, image and a resource.", input_schema=NO_ARGS
    ),
    types.Tool(name="test_tool_with_logging", description="Logs three messages while running.", input_schema=NO_ARGS),
    types.Tool(name="test_tool_with_progress", description="Reports progress 0, 50, 100.", input_schema=NO_ARGS),
    types.Tool(name="test_error_handling", description="Always fails (isError).", input_schema=NO_ARGS),
    types.Tool(
        name="test_sampling",
        description="Asks the client's LLM (sampling/createMessage).",
        input_schema=_one_string("prompt", "The prompt to send to the LLM"),
    ),
    types.Tool(
        name="test_elicitation",
        description="Asks the user (elicitation/create).",
        input_schema=_one_string("message", "The message to show the user"),
    ),
    types.Tool(
        name="test_elicitation_sep1034_defaults",
        description="Elicits with defaults for every primitive type (SEP-1034).",
        input_schema=NO_ARGS,
    ),
    types.Tool(
        name="test_elicitation_sep1330_enums",
        description="Elicits with the five enum shapes (SEP-1330).",
        input_schema=NO_ARGS,
    ),
    types.Tool(
        name="json_schema_2020_12_tool",
        description="Tool with JSON Schema 2020-12 features",
        input_schema={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                }
            },
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": False,
        },
    ),
    types.Tool(
        name="test_reconnection",
        description="Closes its SSE stream mid-call; the result arrives after the client resumes (SEP-1699).",
        input_schema=NO_ARGS,
    ),
    types.Tool(
        name="update_watched_resource",
        description="Changes test://watched-resource and notifies its subscribers (not a suite scenario).",
        input_schema=_one_string("text", "The resource's new text"),
    ),
]


ELICIT_USER = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}
ELICIT_DEFAULTS = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "description": "Verified", "default": True},
    },
}
ELICIT_ENUMS = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


WATCHED_URI = "test://watched-resource"
STATIC_TEXT = "This is the content of the static text resource."
RESOURCES = [
    types.Resource(
        uri="test://static-text", name="static-text", description="A static text resource", mime_type="text/plain"
    ),
    types.Resource(
        uri="test://static-binary", name="static-binary", description="A static PNG image", mime_type="image/png"
    ),
    types.Resource(
        uri=WATCHED_URI, name="watched-resource", description="A resource to subscribe to", mime_type="text/plain"
    ),
]
TEMPLATE = types.ResourceTemplate(
    uri_template="test://template/{id}/data",
    name="template-data",
    description="JSON data for an id",
    mime_type="application/json",
)
TEMPLATE_PREFIX, TEMPLATE_SUFFIX = "test://template/", "/data"


def _arg(name: str, description: str) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=True)


PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with two arguments",
        arguments=[_arg("arg1", "First test argument"), _arg("arg2", "Second test argument")],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt embedding a resource",
        arguments=[_arg("resourceUri", "URI of the resource to embed")],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
]


COMPLETIONS = {"arg1": ["paris", "park", "party"], "arg2": ["hello", "help"], "id": ["123", "456"]}
