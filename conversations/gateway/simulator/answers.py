"""Compose the simulator's answers: deterministic, readable, and revealing what it received.

The rules are few and visible on purpose, so tests and people can predict the output:
- Chinese in the question gets a Chinese answer.
- "my name is X" is remembered across turns; "what is my name?" recalls it, which shows
  that `previous_response_id` (or a replayed history) really reached the model.
- A request for code gets Markdown with a heading, a list and a fenced code block.
- Instructions (or a question) asking for a title get a title of a few words.
- A question containing "refuse" (or 拒绝) gets a refusal, to exercise refusal events.
- Images are acknowledged with their type, size in bytes and pixel dimensions, files
  with their name, type, pages (PDF) and size.
- Anything else gets a short, friendly reply.
"""

# Chinese answers use full-width punctuation on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from .catalogue import ModelSpec
from .conversation import FunctionCall, Message, Turn
from .files import FileInfo
from .images import ImageInfo
from .tokens import is_cjk

__all__ = [
    "REFUSAL",
    "approach_for",
    "compose_reply",
    "compose_title",
    "compose_tool_reply",
    "describe_files",
    "describe_images",
    "is_title_request",
    "known_name",
    "latest_user_message",
    "snippet",
    "topic_words",
    "wants_refusal",
]

REFUSAL = {"en": "I'm sorry, but I can't help with that.", "zh": "抱歉，我无法帮助处理这个请求。"}

_NAME_STATEMENT = re.compile(
    r"\b(?:my name is|call me|i'm called|i am called)\s+([A-Z][\w'-]*|[a-z][\w'-]*)", re.I
)
_CHINESE_NAME_STATEMENT = re.compile(
    r"(?:我叫|我的名字是|我的名字叫)(?!什么)([\w\u4e00-\u9fff]{1,12})"
)
_NAME_QUESTION = re.compile(
    r"\b(?:what(?:'s| is) my name|do you (?:know|remember) my name|who am i)\b"
    r"|我叫什么|我的名字是什么|我是谁",
    re.I,
)
_CODE_REQUEST = re.compile(
    r"\b(?:code|function|script|program|snippet|implement|class|regex|python|javascript|"
    r"typescript|rust|golang|bash|sql)\b|代码|函数|程序|脚本",
    re.I,
)
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|good (?:morning|afternoon|evening))\b|^\s*(?:你好|您好|嗨)", re.I
)
_THANKS = re.compile(r"\b(?:thanks|thank you)\b|谢谢", re.I)
_TITLE_REQUEST = re.compile(r"\btitle\b|标题", re.I)
_REFUSAL_TRIGGER = re.compile(r"\brefuse\b|拒绝", re.I)
# fmt: off
_STOP_WORDS = frozenset({
    "a", "about", "an", "and", "any", "are", "as", "at", "bash", "be", "been", "but", "by",
    "can", "class", "code", "conversation", "could", "create", "did", "do", "does", "example",
    "explain", "for", "from", "function", "generate", "give", "go", "golang", "he", "her",
    "him", "how", "i", "implement", "in", "is", "it", "its", "javascript", "js", "make", "me",
    "my", "node", "of", "on", "or", "our", "please", "program", "python", "quick", "rust",
    "script", "shall", "she", "shell", "short", "should", "show", "simple", "small", "snippet",
    "some", "sql", "tell", "that", "the", "their", "these", "they", "this", "those", "title",
    "to", "typescript", "use", "using", "was", "we", "were", "what", "when", "where", "which",
    "who", "whom", "why", "will", "with", "would", "write", "you", "your",
})
# fmt: on
_LANGUAGES = {
    "python": "Python",
    "typescript": "TypeScript",
    "javascript": "JavaScript",
    "rust": "Rust",
    "go": "Go",
    "bash": "Bash",
    "sql": "SQL",
}
_LANGUAGE_ALIASES = {"js": "javascript", "node": "javascript", "golang": "go", "shell": "bash"}


def latest_user_message(turns: Sequence[Turn]) -> Message | None:
    """Return the last user message of the conversation."""
    return next((t for t in reversed(turns) if isinstance(t, Message) and t.role == "user"), None)


def snippet(text: str, limit: int = 60) -> str:
    """Return `text` on one line, shortened to about `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def topic_words(text: str, limit: int = 4) -> list[str]:
    """Return the first few meaningful words of `text` (no stop words)."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9'-]*", text)
    return [word for word in words if word.lower() not in _STOP_WORDS][:limit]


def known_name(turns: Sequence[Turn]) -> str | None:
    """Return the name the user last introduced themselves with, if any."""
    name = None
    for turn in turns:
        if isinstance(turn, Message) and turn.role == "user":
            found = _introduced_name(turn.text)
            name = found or name
    return name


def is_title_request(instructions: str | None, text: str) -> bool:
    """Return whether the caller wants a conversation title rather than an answer."""
    if instructions and _TITLE_REQUEST.search(instructions):
        return True
    return bool(re.match(r"\s*(?:generate |write |suggest )?(?:a )?title\b", text, re.I))


def wants_refusal(text: str) -> bool:
    """Return whether this question is scripted to be refused."""
    return bool(_REFUSAL_TRIGGER.search(text))


def compose_title(text: str) -> str:
    """Return a title of a few words for a conversation that starts with `text`."""
    if is_cjk(text):
        characters = re.sub(r"[^\u4e00-\u9fffA-Za-z0-9]", "", text)
        return characters[:10] or "新对话"
    words = topic_words(text)
    return " ".join(word[:1].upper() + word[1:] for word in words) or "New Conversation"


def describe_images(images: Sequence[ImageInfo | str], chinese: bool) -> str:
    """Return one sentence acknowledging the images received."""
    descriptions = [
        image.describe() if isinstance(image, ImageInfo) else f"an image at {image}"
        for image in images
    ]
    if chinese:
        return f"我收到了 {len(images)} 张图片：{'；'.join(descriptions)}。"
    noun = "image" if len(images) == 1 else "images"
    return f"I received {len(images)} {noun}: {'; '.join(descriptions)}."


def describe_files(files: Sequence[FileInfo], chinese: bool) -> str:
    """Return one sentence acknowledging the files received."""
    descriptions = [file.describe() for file in files]
    if chinese:
        return f"我收到了 {len(files)} 个文件：{'；'.join(descriptions)}。"
    noun = "file" if len(files) == 1 else "files"
    return f"I received {len(files)} {noun}: {'; '.join(descriptions)}."


def compose_reply(question: Message | None, turns: Sequence[Turn], model: ModelSpec) -> str:
    """Return the answer to `question`, the latest user message among `turns`."""
    text = question.text if question else ""
    chinese = is_cjk(text)
    paragraphs = []
    if question and question.files:
        paragraphs.append(describe_files(question.files, chinese))
    if question and question.images:
        paragraphs.append(describe_images(question.images, chinese))
    if question and (question.images or question.files) and not text.strip():
        paragraphs.append(
            "我是离线模拟器，看不到图片内容，但文件是完整的。"
            if chinese
            else "I'm the offline simulator, so I can't see what's in it, "
            "but the file arrived intact."
        )
        return "\n\n".join(paragraphs)
    paragraphs.append(_reply_to_text(text, turns, model, chinese))
    return "\n\n".join(paragraphs)


def approach_for(text: str) -> str:
    """Return how the reply to `text` will go, in words (for reasoning summaries)."""
    if _CODE_REQUEST.search(text):
        return "A short Markdown answer with a heading, a list and a code example fits best."
    if _NAME_QUESTION.search(text):
        return "They told me their name earlier, so I'll look back through the conversation."
    if is_cjk(text):
        return "The question is in Chinese, so I'll answer in Chinese."
    return "A short, direct reply is enough."


def compose_tool_reply(call: FunctionCall, output: str, chinese: bool) -> str:
    """Return the answer built from a function's output."""
    value = _readable_output(output)
    expression = _expression_in(call.arguments)
    if expression:
        return f"{expression} = {value}" + ("。" if chinese else ".")
    if chinese:
        return f"根据 `{call.name}` 的结果：**{value}**。"
    return f"The `{call.name}` tool says: **{value}**."


def _reply_to_text(text: str, turns: Sequence[Turn], model: ModelSpec, chinese: bool) -> str:
    introduced = _introduced_name(text)
    if introduced:
        if chinese:
            return f"你好，{introduced}！很高兴认识你。有什么可以帮你的吗？"
        return f"Nice to meet you, {introduced}! How can I help you today?"
    if _NAME_QUESTION.search(text):
        name = known_name(turns)
        if chinese:
            return f"你叫{name}。" if name else "你还没有告诉我你的名字。"
        return f"Your name is {name}." if name else "You haven't told me your name yet."
    if _CODE_REQUEST.search(text):
        return _code_answer(text, chinese)
    if _GREETING.search(text):
        name = known_name(turns)
        if chinese:
            return f"你好{('，' + name) if name else ''}！今天有什么可以帮你的吗？"
        return f"Hello{(', ' + name) if name else ''}! How can I help you today?"
    if _THANKS.search(text):
        return (
            "不客气！还有其他需要帮忙的吗？"
            if chinese
            else "You're welcome! Anything else I can help with?"
        )
    return _default_answer(text, model, chinese)


def _default_answer(text: str, model: ModelSpec, chinese: bool) -> str:
    quoted = snippet(text)
    is_question = text.rstrip().endswith(("?", "？"))
    if chinese:
        if is_question:
            return (
                f"好问题！我是离线模拟器（{model.label}），无法真正查询，"
                f"但真实模型会在这里用一两句话回答“{quoted}”。"
            )
        return f"收到：“{quoted}”。我是离线模拟器（{model.label}），接下来想做什么？"
    if is_question:
        return (
            f"Good question! I'm {model.label}, an offline simulator, so I can't look that up, "
            f"but a real model would answer “{quoted}” here in a sentence or two."
        )
    if not quoted:
        return f"Hello! I'm {model.label}, an offline simulator. What would you like to talk about?"
    return (
        f"Got it: “{quoted}”. I'm {model.label}, an offline simulator. "
        "What would you like to do next?"
    )


def _introduced_name(text: str) -> str | None:
    match = _NAME_STATEMENT.search(text) or _CHINESE_NAME_STATEMENT.search(text)
    if match is None:
        return None
    name = match.group(1)
    return name[:1].upper() + name[1:] if name.isascii() else name


def _code_answer(text: str, chinese: bool) -> str:
    language = _language_in(text)
    words = topic_words(text, limit=3)
    name = "_".join(word.lower() for word in words) or "example"
    name = re.sub(r"\W", "_", name)
    camel = name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:])
    topic = " ".join(words) or "example"
    heading = _LANGUAGES[language] + (" 示例" if chinese else " example: " + topic.capitalize())
    code = (
        _CODE_TEMPLATES[language]
        .replace("__NAME__", name)
        .replace("__CAMEL__", camel)
        .replace("__TOPIC__", topic.capitalize())
    )
    identifier = camel if language in ("javascript", "typescript", "go") else name
    if chinese:
        intro = f"下面是一个简短的 {_LANGUAGES[language]} 示例："
        bullets = [
            f"`{identifier}` 接收一组数据并返回结果。",
            "没有任何外部依赖，可以直接复制使用。",
            "运行文件即可看到输出。",
        ]
        outro = "请根据你的数据调整函数体。"
    else:
        intro = f"Here's a short {_LANGUAGES[language]} example:"
        bullets = [
            f"`{identifier}` takes some items and returns a result.",
            "It has no dependencies, so you can paste it anywhere.",
            "Run the file to see it print the result.",
        ]
        outro = "Adapt the body to your own data."
    bullet_list = "\n".join(f"- {bullet}" for bullet in bullets)
    return f"## {heading}\n\n{intro}\n\n{bullet_list}\n\n```{language}\n{code}```\n\n{outro}"


def _language_in(text: str) -> str:
    for word in re.findall(r"[a-z]+", text.lower()):
        word = _LANGUAGE_ALIASES.get(word, word)
        if word in _LANGUAGES:
            return word
    return "python"


def _readable_output(output: str) -> str:
    """Return a function output as a short phrase (a JSON result field, or the text)."""
    try:
        value = json.loads(output)
    except ValueError:
        return snippet(output, 200)
    if isinstance(value, dict):
        for key in ("result", "value", "answer", "time", "datetime", "date", "output"):
            if key in value:
                return str(value[key])
        return ", ".join(f"{key}: {item}" for key, item in value.items()) or "{}"
    return str(value)


def _expression_in(arguments: str) -> str | None:
    """Return the arithmetic the model asked a tool to do, written out, if it did."""
    try:
        values = json.loads(arguments)
    except ValueError:
        return None
    if not isinstance(values, dict):
        return None
    for value in values.values():
        if (
            isinstance(value, str)
            and re.fullmatch(r"[\d.\s+\-*/\u00d7\u00f7()]+", value)
            and re.search(r"\d", value)
        ):
            return value.strip()
    numbers = [v for v in values.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    operator = next(
        (v for v in values.values() if isinstance(v, str) and v in _OPERATOR_SYMBOLS), None
    )
    if len(numbers) == 2 and operator:
        return f"{numbers[0]:g} {_OPERATOR_SYMBOLS[operator]} {numbers[1]:g}"
    return None


_OPERATOR_SYMBOLS = {
    "add": "+",
    "plus": "+",
    "+": "+",
    "subtract": "-",
    "minus": "-",
    "-": "-",
    "multiply": "*",
    "times": "*",
    "*": "*",
    "divide": "/",
    "/": "/",
}

_CODE_TEMPLATES = {
    "python": '''def __NAME__(items):
    """__TOPIC__: a small, self-contained example."""
    results = []
    for item in items:
        results.append(item)
    return results


if __name__ == "__main__":
    print(__NAME__([1, 2, 3]))
''',
    "javascript": """// __TOPIC__: a small, self-contained example.
function __CAMEL__(items) {
  return items.map((item) => item);
}

console.log(__CAMEL__([1, 2, 3]));
""",
    "typescript": """// __TOPIC__: a small, self-contained example.
function __CAMEL__(items: number[]): number[] {
  return items.map((item) => item);
}

console.log(__CAMEL__([1, 2, 3]));
""",
    "rust": """// __TOPIC__: a small, self-contained example.
fn __NAME__(items: &[i32]) -> Vec<i32> {
    items.to_vec()
}

fn main() {
    println!("{:?}", __NAME__(&[1, 2, 3]));
}
""",
    "go": """package main

import "fmt"

// __CAMEL__ is a small, self-contained example: __TOPIC__.
func __CAMEL__(items []int) []int {
\treturn append([]int(nil), items...)
}

func main() {
\tfmt.Println(__CAMEL__([]int{1, 2, 3}))
}
""",
    "bash": """#!/usr/bin/env bash
# __TOPIC__: a small, self-contained example.
set -euo pipefail

__NAME__() {
  for item in "$@"; do
    echo "$item"
  done
}

__NAME__ 1 2 3
""",
    "sql": """-- __TOPIC__: a small, self-contained example.
SELECT id, name
FROM items
ORDER BY name;
""",
}
