"""Official metrics against cases computed by hand (each comment shows the computation)."""

import pytest

from sleuth.eval import metrics as M


def test_normalize_answer():
    # lower → "the cat, sat on a mat!"; drop punctuation → "the cat sat on a mat";
    # drop articles → " cat sat on   mat"; collapse whitespace → "cat sat on mat"
    assert M.normalize_answer("The Cat, sat on a MAT!") == "cat sat on mat"
    # "another" and "theory" keep their letters: articles only go on word boundaries
    assert M.normalize_answer("another theory") == "another theory"


def test_normalize_zh_answer():
    # Chinese and ASCII punctuation and every space go; case folds.
    assert M.normalize_zh_answer("厦门 大学。（ABC）!") == "厦门大学abc"


def test_qa_f1_score():
    # pred tokens [cat, sat]; gold [cat, sat, down]: common 2, P = 2/2, R = 2/3,
    # F1 = 2·1·(2/3) / (1 + 2/3) = 0.8
    assert M.qa_f1_score("The cat sat.", "a cat sat down") == pytest.approx(0.8)
    assert M.qa_f1_score("dog", "cat") == 0
    assert M.qa_f1_score("", "cat") == 0


def test_qa_f1_zh_score():
    # jieba: "在厦门大学举办" → [在, 厦门大学, 举办]; "厦门大学。" → [厦门大学, 。] → 。 removed.
    assert M.zh_tokens("在厦门大学举办") == ["在", "厦门大学", "举办"]
    assert M.zh_tokens("厦门大学。") == ["厦门大学"]
    # common 1: P = 1/3, R = 1/1, F1 = 2·(1/3)·1 / (1/3 + 1) = 0.5
    assert M.qa_f1_zh_score("在厦门大学举办", "厦门大学。") == pytest.approx(0.5)


def test_rouge_score_counts_unique_words():
    # rouge 1.0.1 (exclusive=True) counts distinct words: ref {the,cat,is,on,mat} m = 5,
    # hyp {the,cat,sat,on,mat} n = 5, LCS "the cat on the mat" as a set {the,cat,on,mat} = 4;
    # R = P = 4/5, F = 2·PR/(P+R+1e-8) ≈ 0.8
    assert M.rouge_score("the cat sat on the mat", "the cat is on the mat") == pytest.approx(0.8, abs=1e-6)
    # empty hypothesis: the package raises, the official wrapper returns 0
    assert M.rouge_score("", "the cat") == 0.0


def test_rouge_zh_score():
    # jieba: [我, 爱, 北京] vs [我, 爱, 上海]; LCS {我, 爱} = 2 of 3 each way: F = 2/3
    assert M.rouge_zh_score("我爱北京", "我爱上海") == pytest.approx(2 / 3, abs=1e-6)


def test_classification_score_keeps_reference_quirks():
    # matches [ab, abc, x]; "ab" ⊂ "abc" and ≠ → removed, the iterator then skips "abc" and
    # looks at "x" (not in "abc"): list [abc, x], gold in it → 1/2
    assert M.classification_score("abc x", "abc", all_classes=["ab", "abc", "x"]) == 0.5
    # matches [a, ab, abc]: "a" removed, the iterator skips "ab" (the quirk), "abc" == gold
    # stays: [ab, abc] → 1/2 (a removal without the quirk would give 1)
    assert M.classification_score("abc", "abc", all_classes=["a", "ab", "abc"]) == 0.5
    # no class in the prediction: the reference's always-true `!= 0` test gives 0, never difflib
    assert M.classification_score("zzz", "abc", all_classes=["abc", "x"]) == 0.0


def test_retrieval_scores():
    assert M.retrieval_zh_score("段落27", "段落27") == 1.0
    # numbers [2, 27], one right → 1/2
    assert M.retrieval_zh_score("答案是段落2或段落27", "段落27") == 0.5
    assert M.retrieval_zh_score("段落3", "段落27") == 0.0
    assert M.retrieval_zh_score("不知道", "段落27") == 0.0
    # numbers [1, 12] → 1/2
    assert M.retrieval_score("Paragraph 1 or Paragraph 12", "Paragraph 12") == 0.5


def test_count_score():
    # numbers [3, 4], one equals 3 → 1/2
    assert M.count_score("There are 3 unique, not 4", "3") == 0.5
    assert M.count_score("none", "3") == 0.0


def test_code_sim_score():
    # the first line without ` # // is "x = 1" → identical → 1.0
    assert M.code_sim_score("```python\n# comment\nx = 1\n", "x = 1") == 1.0
    # difflib ratio of "abcd"/"abce": 2·3/8 = 0.75 → fuzz.ratio 75 → 0.75
    assert M.code_sim_score("abcd", "abce") == 0.75


def test_first_line_truncation_and_max_over_answers():
    # triviaqa is cut to "Paris" → F1 1 against "Paris"
    assert M.score_longbench_item("triviaqa", "\nParis\nis the answer", ["Paris"]) == 1.0
    # hotpotqa is not cut: [paris, is, answer] vs [paris]: P = 1/3, R = 1 → F1 = 0.5
    assert M.score_longbench_item("hotpotqa", "\nParis\nis the answer", ["Paris"]) == pytest.approx(0.5)
    # max over gold answers: "Paris" vs "the city of Paris" ([city, of, paris]) → 0.5, vs "Paris" → 1
    assert M.score_longbench_item("hotpotqa", "Paris", ["the city of Paris", "Paris"]) == 1.0
    # LongBench-E file names use the task's metric
    assert M.score_longbench_item("hotpotqa_e", "Paris", ["Paris"]) == 1.0


def test_scorer_averages_times_100():
    # items score 1.0 and 0.5 → 100 · 1.5 / 2 = 75.0
    preds, answers = ["Paris", "\nParis\nis the answer"], [["Paris"], ["Paris"]]
    assert M.longbench_scorer("hotpotqa", preds, answers) == 75.0
    # lengths 100 and 5000 land in different bins
    assert M.longbench_scorer_e("hotpotqa", preds, answers, [100, 5000]) == {
        "0-4k": 100.0, "4-8k": 50.0, "8k+": None,
    }


def test_dataset2metric_covers_the_21_tasks():
    assert len(M.DATASET2METRIC) == 21
    assert M.DATASET2METRIC["multifieldqa_zh"] is M.qa_f1_zh_score
    assert M.DATASET2METRIC["passage_retrieval_zh"] is M.retrieval_zh_score
    assert M.DATASET2METRIC["multi_news"] is M.rouge_score
    with pytest.raises(ValueError):
        M.score_longbench_item("nope", "x", ["x"])


def test_extract_answer_v2():
    assert M.extract_answer_v2("The correct answer is (B).") == "B"
    assert M.extract_answer_v2("**The correct answer is C**") == "C"  # asterisks removed first
    assert M.extract_answer_v2("Answer: D") is None
    assert M.extract_answer_v2("The correct answer is (E)") is None


def test_longbench_v2_accuracy():
    recs = [
        {"pred": "A", "answer": "A", "difficulty": "easy", "length": "short"},
        {"pred": "B", "answer": "C", "difficulty": "easy", "length": "medium"},
        {"pred": "D", "answer": "D", "difficulty": "hard", "length": "long"},
        {"pred": None, "answer": "A", "difficulty": "hard", "length": "short"},
    ]
    # overall 2/4; easy 1/2; hard 1/2; short 1/2; medium 0/1; long 1/1
    assert M.longbench_v2_accuracy(recs) == {
        "overall": 50.0, "easy": 50.0, "hard": 50.0, "short": 50.0, "medium": 0.0, "long": 100.0, "n": 4,
    }
    # compensated: the None counts 0.25 → hard (1 + 0.25)/2 = 62.5, short 62.5
    comp = M.longbench_v2_accuracy(recs, compensated=True)
    assert comp["hard"] == 62.5 and comp["short"] == 62.5


def test_polish_answer():
    assert M.polish_answer("(B) 1366") == "B"
    assert M.polish_answer(" C. the third") == "C"
    assert M.polish_answer("The answer is (D)") == "D"


def test_lvbench_accuracy_counts_missing_as_wrong():
    qs = [
        {"uid": 1, "answer": "A", "question_type": ["key information retrieval"]},
        {"uid": 2, "answer": "B", "question_type": ["key information retrieval", "temporal grounding"]},
        {"uid": "3", "answer": "C", "question_type": ["event understanding"]},
    ]
    res = M.lvbench_accuracy(qs, {"1": "A", "2": "C"})
    # strict: overall 1/3; KIR 1/2 (uid 2 counts in KIR and TG); TG 0/1; EU 0/1 (missing = wrong)
    assert res["strict"] == {"Overall": 33.33, "KIR": 50.0, "TG": 0.0, "EU": 0.0}
    # official rule skips uid 3: overall 1/2, EU has no answered question
    assert res["answered_only"] == {"Overall": 50.0, "KIR": 50.0, "TG": 0.0}
    assert res["missing"] == ["3"] and res["n"] == 3 and res["n_answered"] == 2
