"""MMLongBench-Doc's scoring rules as reproduced in sleuth.eval.mmlb_score, and its extraction parse."""

from sleuth.eval.mmlb_prompts import EXTRACTION_PROMPT, extraction_messages, parse_extraction
from sleuth.eval.mmlb_score import acc_and_f1, anls_compute, eval_score, get_clean_string, is_exact_match


def test_int_exact():
    assert eval_score("10", "10", "Int") == 1.0
    assert eval_score("10", "10.0", "Int") == 1.0
    assert eval_score("10", "11", "Int") == 0.0
    assert eval_score("10", "ten", "Int") == 0.0


def test_float_tolerance_and_percentages():
    assert eval_score("0.5", "0.503", "Float") == 1.0  # within 1 % relative
    assert eval_score("0.5", "0.52", "Float") == 0.0
    assert eval_score("45%", "0.45", "Float") == 1.0  # gt/100
    assert eval_score("$12.5", "12.50", "Float") == 1.0
    assert eval_score("3.2", "abc", "Float") == 0.0


def test_str_anls_and_exact_kinds():
    assert eval_score("Costco", "costco", "Str") == 1.0
    assert 0.5 < eval_score("Wholesale", "Wholesales", "Str") < 1.0
    assert eval_score("apple", "banana", "Str") == 0.0
    # dates, phone numbers and URLs must match exactly
    assert is_exact_match("2021-08-29")
    assert eval_score("2021-08-29", "2021-08-28", "Str") == 0.0
    assert eval_score("https://a.org/x", "https://a.org/x", "Str") == 1.0


def test_not_answerable_is_a_string_answer():
    assert eval_score("Not answerable", "Not answerable", "None") == 1.0
    assert eval_score("Not answerable", "42", "None") == 0.0


def test_lists_as_sets():
    assert eval_score("['b', 'a']", "['a', 'b']", "List") == 1.0
    assert eval_score("['1', '2']", "['2', '1']", "List") == 1.0
    assert eval_score("['a', 'b']", "['a']", "List") == 0.0
    assert eval_score("['1', '2']", "['1', '3']", "List") == 0.0
    # model output is parsed as a literal, never executed
    assert eval_score("['a']", "[__import__('os').getcwd()]", "List") == 0.0


def test_clean_string():
    assert get_clean_string(" '$1,000 (approx)' ") == "1,000"
    assert get_clean_string("12%") == "12"


def test_anls_threshold():
    assert anls_compute("abcd", "abcd") == 1.0
    assert anls_compute("abcd", "wxyz") == 0.0


def test_accuracy_and_f1_count_not_answerable():
    s = [{"answer": "5", "pred": "5", "score": 1.0}, {"answer": "Not answerable", "pred": "Not answerable", "score": 1.0},
         {"answer": "7", "pred": "Not answerable", "score": 0.0}, {"answer": "Not answerable", "pred": "3", "score": 0.0}]
    acc, f1 = acc_and_f1(s)
    assert acc == 0.5
    # recall 1/2 over answerable golds, precision 1/2 over answered predictions
    assert abs(f1 - 0.5) < 1e-9


def test_extraction_prompt_and_parse():
    assert EXTRACTION_PROMPT.startswith("Given the question and analysis")
    msgs = extraction_messages("Q?", "It is 5 [3].")
    assert msgs[0]["role"] == "user" and msgs[1]["role"] == "assistant"
    assert "Question:Q?\nAnalysis:It is 5 [3].\n" in msgs[1]["content"]
    assert parse_extraction("Extracted answer: 5\nAnswer format: Integer") == "5"
    assert parse_extraction("5\nmore") == "5"
