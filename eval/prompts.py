"""Benchmark prompt templates, and how they are turned into a question for ``Library.ask``.

The templates are the benchmarks' own (LongBench ``config/dataset2prompt.json`` for the tasks
in shared/data, LongBench v2 ``prompts/0shot.txt``, LVBench's letter-answer instruction). In the
end-to-end runs the agent reads the document from the library instead of from the prompt, so
the template's ``{context}`` / ``$DOC$`` slot is filled with a pointer to the indexed document.
"""

from __future__ import annotations

DATASET2PROMPT = {
    "multifieldqa_zh": "阅读以下文字并用中文简短回答：\n\n{context}\n\n现在请基于上面的文章回答下面的问题，只告诉我答案，不要输出任何其他字词。\n\n问题：{input}\n回答：",
    "multifieldqa_en": "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following question based on the above text, only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:",
    "passage_retrieval_zh": "以下是若干段落文字，以及其中一个段落的摘要。请确定给定的摘要出自哪一段。\n\n{context}\n\n下面是一个摘要\n\n{input}\n\n请输入摘要所属段落的编号。答案格式必须是\"段落1\"，\"段落2\"等格式\n\n答案是：",
    "passage_retrieval_en": "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\nThe answer is: ",
    "multi_news": "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:",
}

#: Queries for retrieval when the item's ``input`` is empty (summaries have no question).
QUERYLESS = {
    "multi_news": "Write a one-page summary of all the news.",
    "gov_report": "Write a one-page summary of the report.",
    "vcsum": "总结会议的内容。",
}

V2_0SHOT = (
    "Please read the following text and answer the question below.\n\n<text>\n$DOC$\n</text>\n\n"
    "What is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\n"
    'Format your response as follows: "The correct answer is (insert answer here)".'
)

LVBENCH_PROMPT = (
    "Watch the video and answer the multiple-choice question with the letter of the correct option.\n\n"
    "{question}\n\nAnswer with the option's letter (A, B, C or D)."
)


def doc_pointer(source: str, language: str = "en") -> str:
    if language == "zh":
        return f"（文档：资料库中的《{source}》）"
    return f"(the document {source!r} in the library)"


def longbench_question(dataset: str, item, source: str) -> str:
    template = DATASET2PROMPT.get(dataset.removesuffix("_e"))
    if template is None:
        raise ValueError(f"no prompt template for LongBench task {dataset!r}")
    return template.format(context=doc_pointer(source, item.language), input=item.input)


def longbench_query(dataset: str, item) -> str:
    """What retrieval searches for: the item's input, or the task's instruction when empty."""
    return item.input.strip() or QUERYLESS.get(dataset.removesuffix("_e"), "summary")


def v2_question(item, source: str | None) -> str:
    doc = doc_pointer(source) if source else item.context.strip()
    out = V2_0SHOT.replace("$DOC$", doc).replace("$Q$", item.question.strip())
    for k in "ABCD":
        out = out.replace(f"$C_{k}$", item.choices[k].strip())
    return out


def v2_query(item) -> str:
    return item.question.strip() + "\n" + "\n".join(f"({k}) {v}" for k, v in item.choices.items())


def lvbench_question(q) -> str:
    return LVBENCH_PROMPT.format(question=q.raw_question)
