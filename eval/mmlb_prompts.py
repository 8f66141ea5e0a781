"""MMLongBench-Doc's answer-extraction prompt, verbatim.

From github.com/mayubo2333/MMLongBench-Doc, ``eval/prompt_for_answer_extraction.md`` at commit
d73f0dc0be7e0a2ff6a403d5fe65fcd96461f384 (code licence Apache-2.0, © the MMLongBench-Doc authors).
The benchmark sends it as the user turn and the question plus the model's free-form answer as an
assistant turn (``eval/extract_answer.py``); :func:`extraction_messages` builds the same messages.
"""

from __future__ import annotations

EXTRACTION_PROMPT = 'Given the question and analysis, you are tasked to extract answers with required formats from the free-form analysis. \n- Your extracted answers should be one of the following formats: (1) Integer, (2) Float, (3) String and (4) List. If you find the analysis the question can not be answered from the given documents, type "Not answerable". Exception: If the analysis only tells you that it can not read/understand the images or documents, type "Fail to answer".\n- Please make your response as concise as possible. Also note that your response should be formatted as below:\n```\nExtracted answer: [answer]\nAnswer format: [answer format]\n```\n\nPlease read the following example, then extract the answer from the model response and type it at the end of the prompt. \n\n---\nQuestion: List the primary questions asked about the services in this report.\nAnalysis:  The primary questions asked about the services in the report for The Limes Residential Home are:\\n\\n1. Is the service safe?\\n2. Is the service effective?\\n3. Is the service caring?\\n4. Is the service responsive?\\n5. Is the service well-led?\nExtracted answer: [\'Is the servife safe?\', \'Is the service effective\', \'Is the serve caring?\', \'Is the service responsive?\', \'Is the service well-led?\']\nAnswer format: List\n\n---\nQuestion: How many regulations of the HSCA 2008 are breached in all according to this report?\nAnalysis: According to the report, the provider breached 10 Health and Social Care Act 2008 (Regulated Activities) Regulations in total. Here are the specifics:\\n\\n1. Regulation 13: Safeguarding service users from abuse and improper treatment\\n2. Regulation 12: Safe care and treatment\\n3. Regulation 18: Staffing\\n4. Regulation 11: Need for consent\\n5. Regulation 10: Dignity and respect\\n6. Regulation 9: Person-centred care\\n7. Regulation 17: Good governance\\n8. Regulation 18 (CQC Registration Regulations 2009): Notification of other incidents\\n9. Regulation 18: Failure to maintain an accurate and up-to-date care plan\\n10. Regulation 11: Failure to implement the Mental Capacity Act 2005 code of practice effectively\\n\\nThese breaches involve issues concerning staffing, safeguarding, medicines management, dignity and respect, consent, care planning, governance, and failure to notify the CQC of incidents.\nExtracted answer: 10\nAnswer format: Integer\n\n---\nQuestion: According to the survey that is the percentage of Chinese who are paying more or about the same attention to politics after Trump\'s election?\nAnalysis: The survey provided does not specify the percentage of Chinese individuals specifically who are paying more or about the same attention to politics after Trump\'s election. The report focuses primarily on American demographics and does not include specific details about the Chinese population in relation to this question. If you need information about a different demographic or a summary of the findings from the American demographic, I can certainly help with that!\nExtracted answer: Not answerable\nAnswer format: String\n\n---\nQuestion: How many quotations from male respondent over 50 years old are included in this report?\nAnalysis: The image you\'ve provided appears to be a screenshot of a document with multiple charts. However, the text is too small and blurry to read accurately. If you can provide a clearer image or more context, I might be able to help you with your question.\nExtracted answer: Fail to answer\nAnswer format: String\n\n---'


def extraction_messages(question: str, output: str) -> list[dict]:
    """The messages ``extract_answer.py`` sends (user: the prompt; assistant: question + analysis)."""
    return [{"role": "user", "content": EXTRACTION_PROMPT},
            {"role": "assistant", "content": "\n\nQuestion:{}\nAnalysis:{}\n".format(question, output)}]


def parse_extraction(response: str) -> str:
    """``run_api.py``'s parse: the text between "Extracted answer:" and "Answer format:".

    The benchmark lets a response without the marker fail the sample; here it yields the
    response's first line, stripped, so a small extractor that drops the marker is still scored.
    """
    text = response or ""
    if "Extracted answer:" in text:
        return text.split("Answer format:")[0].split("Extracted answer:")[1].strip()
    return text.strip().splitlines()[0].strip() if text.strip() else ""
