"""Mistral's chat formats as Jinja templates, written from Mistral's documented formats.

The catalog's models carry one of these in their GGUF metadata (`tokenizer.chat_template`). They are
here for two jobs: the test fixtures and the benchmark's shape files carry the same template as the real
files, and the catalog names which one each model uses. Each was checked against mistral-common, Mistral's
reference renderer (tests/test_formats.py).

- `mistral-strict`: user/assistant must alternate and a system role raises. Mistral 7B Instruct v0.1/v0.2
  and many v0.3 conversions carry it.
- `mistral-v3`: v0.3's official form: an optional system message is put in front of the *last* user turn.
- `mistral-v3-tekken`: Nemo's: the same rule, no spaces around the content.
- `mistral-v7`: Mistral Small 3: `[SYSTEM_PROMPT]...[/SYSTEM_PROMPT]` where the system message stands.
"""

from __future__ import annotations

FORMATS: dict[str, str] = {}


def register(name: str, template: str) -> str:
    if name in FORMATS:
        raise ValueError(f"chat format {name!r} is already registered")
    FORMATS[name] = template
    return template


def template(name: str) -> str:
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"no chat format {name!r}; known: {', '.join(sorted(FORMATS))}") from None


register("mistral-strict", (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
))

_LAST_USER = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{%- endif %}{%- endfor %}"
    "{{- bos_token }}{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.last and system_message is defined %}"
    "{{- '[INST]SP' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST]SP' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- 'SP' + message['content']|trim + eos_token }}"
    "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of an "
    "initial optional system message!') }}{%- endif %}{%- endfor %}"
)
register("mistral-v3", _LAST_USER.replace("SP", " "))
register("mistral-v3-tekken", _LAST_USER.replace("SP", ""))

register("mistral-v7", (
    "{{- bos_token }}{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}"
    "{%- elif message['role'] == 'user' %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}{{- message['content'] + eos_token }}"
    "{%- else %}{{- raise_exception('Only user, system and assistant roles are supported!') }}{%- endif %}"
    "{%- endfor %}"
))
