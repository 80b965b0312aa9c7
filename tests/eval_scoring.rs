//! The eval suite's scoring rules on hand-written responses.

use unmask::eval::{is_correct, parse_items, Item};

fn item(task: &str, answer: &str) -> Item {
    Item { task: task.into(), prompt: "q".into(), answer: answer.into(), infill: false }
}

#[test]
fn scoring_rules() {
    let a = item("arithmetic", "72");
    assert!(is_correct(&a, "In May she sold 48 / 2 = 24 clips. Altogether 48 + 24 = 72. The answer is 72."));
    assert!(!is_correct(&a, "The answer is 724."));
    assert!(!is_correct(&a, "72 clips in all."), "the number must follow 'The answer is'");
    assert!(!is_correct(&a, "The answer is 70. The answer is 7"), "the last statement counts");
    let f = item("infill", "poor");
    assert!(is_correct(&f, " poor.\n"));
    assert!(!is_correct(&f, "very poor"));
    let r = item("reversal_backward", "Gane Tox");
    assert!(is_correct(&r, "Guta Ret's child is Gane Tox."));
    assert!(!is_correct(&r, "Guta Ret's child is Gane Tix."));
    let b = item("reversal_backward", "Mira");
    assert!(is_correct(&b, " Mira's mother is Ona."));
    assert!(!is_correct(&b, "Miral's mother is Ona."), "a whole word");
    assert!(!is_correct(&b, "Kepo's mother is Ona. Mira's mother is Ona."), "the first sentence only");
    assert!(!is_correct(&b, ""));
    let c = item("reversal_cloze_backward", "Mira");
    assert!(is_correct(&c, ". Mira"), "a cloze span may start with the end of an earlier sentence");
    assert!(!is_correct(&c, ". Miral"));
    // Free-form: numbers as arithmetic, words after the last statement, else the first sentence.
    let n = item("freeform", "42");
    assert!(is_correct(&n, "Mia has 12 + 30 = 42 apples. The answer is 42."));
    assert!(!is_correct(&n, "Mia has 42 apples."), "a number must follow 'The answer is'");
    let w = item("freeform", "Tuesday");
    assert!(is_correct(&w, "The day after Monday is Tuesday. The answer is tuesday."));
    assert!(!is_correct(&w, "The answer is Tuesdays."));
    assert!(is_correct(&w, "Tuesday comes next."), "no statement: the first sentence holds it");
    assert!(!is_correct(&w, "Wednesday. Tuesday."));
}

#[test]
fn items_parse_with_line_numbers_in_errors() {
    let ok = parse_items("a.jsonl", "{\"task\":\"x\",\"prompt\":\"p\",\"answer\":\"1\"}\n\n").unwrap();
    assert_eq!(ok.len(), 1);
    let e = parse_items("a.jsonl", "{\"task\":\"x\"}\n").unwrap_err().to_string();
    assert!(e.starts_with("a.jsonl: line 1"), "{e}");
}
