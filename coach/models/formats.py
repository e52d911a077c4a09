"""Mistral's chat formats as Jinja templates, written from Mistral's documented formats, and the rule that
picks mistral-common's way of rendering for a Mistral file.

Mistral says the templates inside GGUF files are community-written and not guaranteed, and Ministral 3
files in the wild reject a system role, raise on non-alternating turns, or carry another model's
template. So for a Mistral-family file (its vocabulary has the [INST]/[/INST] control tokens) the engine
renders with `mistral_rules`: the format mistral-common's instruct tokenizer of that version produces
(v3: the system text in front of the last user turn; v7 and later, Tekken included: [SYSTEM_PROMPT]
where it stands), checked token for token against mistral-common (tests/test_formats.py). The file's own
template is used only for other models.

The templates also give the test fixtures and the benchmark's shape files the same template as the real
files; the `wild-*` ones are the quirks seen in Ministral 3 files, for fixtures only.

- `mistral-strict`: user/assistant must alternate and a system role raises. Mistral 7B Instruct v0.1/v0.2
  and many v0.3 conversions carry it.
- `mistral-v3`: v0.3's official form: an optional system message is put in front of the *last* user turn.
- `mistral-v3-tekken`: Nemo's: the same rule, no spaces around the content.
- `mistral-v7`: Mistral Small 3: `[SYSTEM_PROMPT]...[/SYSTEM_PROMPT]` where the system message stands.
  Tekken v7, v11 and v13 (Small 3.x, Ministral 3) render a text conversation the same way.
- `wild-no-system`: a Ministral 3 file whose template refuses a system role.
- `wild-strict`: one that raises unless user and assistant strictly alternate (no system message either).
- `wild-chatml`: a Mistral file carrying another model's (ChatML) template.
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


register("wild-no-system", (
    "{{- bos_token }}{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{- raise_exception('System role not supported') }}"
    "{%- elif message['role'] == 'user' %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- message['content'] + eos_token }}{%- endif %}{%- endfor %}"
))
register("wild-strict", (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST]' + message['content'] + '[/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
))
register("wild-chatml", (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
))

# mistral-common's instruct tokenizer versions -> the format it renders a text conversation in
RULES = {"v1": "mistral-v3", "v2": "mistral-v3", "v3": "mistral-v3", "v7": "mistral-v7", "v11": "mistral-v7",
         "v13": "mistral-v7", "v15": "mistral-v7"}


def mistral_rules(specials: set[str] | dict[str, int], *, template: str | None, arch: str,
                  version: str | None = None) -> str | None:
    """The format mistral-common renders in for this file, or None when it is not a Mistral-family file
    (no [INST]/[/INST] control tokens: the file's own template is used). `version` is the tokenizer
    version when known (a catalog file: its shape's tokenizer, `v3` or `tekken-v13`); otherwise v7 and
    later are recognised by the `mistral3` architecture (Ministral 3) or a template that writes
    [SYSTEM_PROMPT], and anything else renders by v3's rules (right for 7B v0.3 and Nemo)."""
    if "[INST]" not in specials or "[/INST]" not in specials:
        return None
    if version:
        return RULES.get(version.removeprefix("tekken-"), "mistral-v7")
    if arch == "mistral3" or "[SYSTEM_PROMPT]" in (template or ""):
        return "mistral-v7"
    return "mistral-v3"
