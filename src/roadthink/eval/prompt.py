"""A sample as chat messages: the images first, then the question, its options and the
form the answer should take. One wording for every model, so scores compare."""

from __future__ import annotations

from roadthink.models.types import ImagePart, ImageURL, Message, TextPart
from roadthink.tasks.sample import AnswerType, Sample

SYSTEM = (
    "You are a driving assistant looking at images from a car's cameras. The ego vehicle is the car the "
    "cameras are mounted on. Answer the question about the scene. You may reason first; end with the final "
    "answer inside <answer></answer>."
)
FORMATS = {
    AnswerType.CHOICE: "Answer with the letter of one option.",
    AnswerType.YES_NO: "Answer yes or no.",
    AnswerType.NUMBER: "Answer with a number.",
    AnswerType.META_ACTION: "Answer as 'speed, direction', e.g. 'keep, straight'.",
    AnswerType.BOX: "Answer with [x1, y1, x2, y2] in pixels.",
    AnswerType.WAYPOINTS: "Answer with a JSON list of six [x, y] pairs.",
    AnswerType.TEXT: "Answer in a few words.",
}


def messages_for(sample: Sample, image_urls: list[str]) -> list[Message]:
    """System prompt, then one user message: every image of the sample, then the text."""
    lines = [sample.question]
    if sample.choices:
        lines += sample.choices
    lines.append(FORMATS[sample.answer_type])
    parts: list[TextPart | ImagePart] = [ImagePart(image_url=ImageURL(url=url)) for url in image_urls]
    parts.append(TextPart(text="\n".join(lines)))
    return [Message(role="system", content=SYSTEM), Message(role="user", content=parts)]
