//! `exim -bp`: a message starts with a line `<age> <size> <id> <sender>`,
//! optionally ending in `*** frozen ***`; the null sender is `<>`.

use super::{ParseError, Sample};

/// Queue figures from `exim -bp` output.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let (mut depth, mut bounces, mut frozen) = (0.0, 0.0, 0.0);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if !looks_like_header(line) {
            // recipient lines are indented (with "D " for delivered, "+D" for generated)
            if line.starts_with(char::is_whitespace) {
                continue;
            }
            return Err(ParseError::new(
                i + 1,
                format!(
                    "not an exim -bp line: {:?}",
                    line.chars().take(80).collect::<String>()
                ),
            ));
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        depth += 1.0;
        if f.get(3) == Some(&"<>") {
            bounces += 1.0;
        }
        if line.contains("*** frozen ***") {
            frozen += 1.0;
        }
    }
    Ok(vec![
        Sample::new("queue_depth", depth),
        Sample::new("queue_bounces", bounces),
        Sample::new("queue_frozen", frozen),
    ])
}

fn looks_like_header(line: &str) -> bool {
    let f: Vec<&str> = line.split_whitespace().collect();
    f.len() >= 4
        && f[0]
            .trim_end_matches(|c: char| "smhdw".contains(c))
            .chars()
            .all(|c| c.is_ascii_digit())
        && f[0].len() >= 2
        && f[2].matches('-').count() == 2
        && f[3].starts_with('<')
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = " 0m  1.7K 1xVKN3-0004Lk-1l <>
          victim@victim.test

 2m   473 1xVKMW-0004C7-0f <victim@victim.test>
        D nouser@example.test
          other@example.test

25h  1.7K 1xVKNu-0004cr-36 <> *** frozen ***
          victim@victim.test
";

    #[test]
    fn real_output() {
        let s = parse(REAL).unwrap();
        let get = |m: &str| s.iter().find(|x| x.metric == m).unwrap().value;
        assert_eq!(get("queue_depth"), 3.0);
        assert_eq!(get("queue_bounces"), 2.0);
        assert_eq!(get("queue_frozen"), 1.0);
        assert_eq!(parse("").unwrap()[0].value, 0.0);
        assert!(parse("this is not exim output\n").is_err());
    }
}
