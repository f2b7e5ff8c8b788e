//! Which ticker symbols a post talks about.

use crate::model::validate_symbol;

/// Symbols a post mentions: `$CASHTAGS` (upper-cased, validated with
/// [`validate_symbol`]) plus bare words equal to one of `known`
/// (case-sensitive, e.g. "AAPL"), deduplicated, in order of first appearance.
///
/// A cashtag must start with a letter after the `$`, so prices such as
/// "$100" are not symbols; trailing sentence punctuation ("$AAPL.") is not
/// part of the symbol, inner dots and dashes are ("$BRK.B", "$BTC-USD").
pub fn mentioned_symbols(text: &str, known: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for raw in text.split(char::is_whitespace).filter(|t| !t.is_empty()) {
        // A token may hold several cashtags ("$AAPL/$MSFT").
        let mut rest = raw;
        let mut had_cashtag = false;
        while let Some(pos) = rest.find('$') {
            let after = rest.get(pos + 1..).unwrap_or("");
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
                .count();
            let body = after.get(..len).unwrap_or("").trim_end_matches(['.', '-']);
            let preceded_by_word = rest
                .get(..pos)
                .and_then(|p| p.chars().next_back())
                .is_some_and(char::is_alphanumeric);
            if !preceded_by_word && body.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
                let sym = body.to_ascii_uppercase();
                if validate_symbol(&sym).is_ok() {
                    push(sym);
                    had_cashtag = true;
                }
            }
            rest = after.get(len..).unwrap_or("");
        }
        if had_cashtag || known.is_empty() {
            continue;
        }
        let word = raw.trim_matches(|c: char| c.is_ascii_punctuation() && c != '$');
        let word = word.trim_end_matches(|c: char| c.is_ascii_punctuation());
        if let Some(k) = known.iter().find(|k| **k == word) {
            push((*k).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mentioned_symbols;

    #[test]
    fn cashtags_and_known_words() {
        let known = ["AAPL", "TSLA", "BRK.B", "A"];
        assert_eq!(
            mentioned_symbols("$aapl to the moon, TSLA too; $AAPL again", &known),
            vec!["AAPL", "TSLA"]
        );
        assert_eq!(
            mentioned_symbols("Bought $BRK.B. Also $BTC-USD!", &known),
            vec!["BRK.B", "BTC-USD"]
        );
        assert_eq!(
            mentioned_symbols("(TSLA) and tsla and Tsla", &known),
            vec!["TSLA"]
        );
        assert_eq!(
            mentioned_symbols("paid $100 for it", &known),
            Vec::<String>::new()
        );
        assert_eq!(
            mentioned_symbols("$AAPL/$MSFT pair", &[]),
            vec!["AAPL", "MSFT"]
        );
        // Too long for a symbol.
        assert!(mentioned_symbols("$ABCDEFGHIJKLMNOP", &known).is_empty());
        // Known words match case-sensitively and whole-word only.
        assert_eq!(mentioned_symbols("A great day", &known), vec!["A"]);
        assert!(mentioned_symbols("AAPLE and XAAPL", &known).is_empty());
        assert!(mentioned_symbols("US$5 or a$b", &known).is_empty());
        assert!(mentioned_symbols("", &known).is_empty());
        assert!(mentioned_symbols("$ $$ $. $-", &known).is_empty());
        assert_eq!(mentioned_symbols("$TSLA $TSLA TSLA", &known), vec!["TSLA"]);
    }
}
