use std::net::IpAddr;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/snds/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_ip_status_export_as_documented() {
    let s = parse_ip_status(&fixture("ipstatus.csv")).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].range(), "192.0.2.0-192.0.2.3");
    assert!(s[0].blocked);
    assert_eq!(
        s[0].reason,
        "Blocked due to user complaints or other evidence of spamming"
    );
    assert!(s[0].contains("192.0.2.2".parse().unwrap()));
    assert!(!s[0].contains("192.0.2.4".parse().unwrap()));
    assert_eq!(s[1].range(), "198.51.100.20");
    assert!(!s[2].blocked);
}

#[test]
fn the_data_export_as_documented() {
    let d = parse_data(&fixture("data.csv")).unwrap();
    assert_eq!(d.len(), 3);
    let g = &d[0];
    assert_eq!(g.ip, "198.51.100.10".parse::<IpAddr>().unwrap());
    assert_eq!(g.activity_start.as_deref(), Some("2026-12-04 08:00"));
    assert_eq!(g.activity_end.as_deref(), Some("2026-12-04 21:00"));
    assert_eq!((g.rcpt, g.data, g.recipients), (14129, 14129, 13025));
    assert_eq!(g.filter, FilterResult::Green);
    assert_eq!(
        g.complaint,
        Some(ComplaintRate {
            percent: 0.1,
            below: true
        })
    );
    assert_eq!(g.complaint.as_ref().unwrap().to_string(), "< 0.1 %");
    assert_eq!(g.trap_start, None);
    assert_eq!(g.trap_hits, 0);
    assert_eq!(g.helo, "mail.example.com");
    assert_eq!(g.mail_from, "bounce@example.com");
    assert!(!g.refused());
    let r = &d[2];
    assert_eq!(r.filter, FilterResult::Red);
    assert!(r.refused());
    assert_eq!(r.trap_hits, 26);
    assert_eq!(r.trap_end.as_deref(), Some("2026-12-04 11:53"));
    assert_eq!(r.complaint.as_ref().unwrap().to_string(), "4.2 %");
    // sndslib's own sample rows (13 columns plus an empty comment) read too
    let sample = b"1.1.1.0,12/31/2019 8:00 AM,9/29/2020 9:00 PM,14129,14129,13025,GREEN,< 0.1%,9/29/2020 8:07 AM,9/29/2020 12:03 PM,41,,,\r\n";
    assert_eq!(parse_data(sample).unwrap()[0].trap_hits, 41);
}

#[test]
fn an_empty_day_is_no_rows_not_an_error() {
    assert_eq!(parse_data(b"").unwrap(), vec![]);
    assert_eq!(parse_data(b"\r\n\r\n").unwrap(), vec![]);
    assert_eq!(parse_ip_status(b"").unwrap(), vec![]);
}

#[test]
fn hostile_rows_refuse_the_whole_export_with_the_line() {
    let good = "198.51.100.10,12/4/2026 8:00 AM,12/4/2026 9:00 PM,1,1,1,GREEN,< 0.1%,,,0,h,m,\r\n";
    for (bad, want) in [
        // the IP status export where the data export should be: wrong columns
        (
            "192.0.2.0,192.0.2.3,Yes,Blocked\r\n".to_string(),
            "4 columns, the data export has 13 or 14",
        ),
        (format!("{good}1,2,3\r\n"), "line 2: 3 columns"),
        (
            good.replace("198.51.100.10", "not-an-ip"),
            "IP \"not-an-ip\" is not an IP address",
        ),
        (good.replace("GREEN", "PURPLE"), "GREEN, YELLOW or RED"),
        (good.replace(",1,1,1,", ",1,-1,1,"), "DATA commands"),
        (
            good.replace(",1,1,1,", ",99999999999999999999999,1,1,"),
            "RCPT commands",
        ),
        (good.replace("< 0.1%", "lots"), "complaint rate"),
        (good.replace("< 0.1%", "150%"), "complaint rate"),
        (good.replace("12/4/2026 8:00 AM", "13/45/2026 8:00 AM"), "activity start"),
        (good.replace("12/4/2026 8:00 AM", "12/4/2026 25:00"), "activity start"),
        (
            "IP Address,Activity start,Activity end,RCPT,DATA,Recipients,Filter,Complaint,Trap start,Trap end,Traps,HELO,MAIL FROM,Comments\r\n".to_string(),
            "line 1: IP",
        ),
        ("<html><body>Sign in</body></html>\r\n".to_string(), "1 columns"),
    ] {
        let e = parse_data(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "{bad:?}: {e}");
    }
    for (bad, want) in [
        (
            "192.0.2.0,192.0.2.3\r\n",
            "2 columns, the IP status export has 4",
        ),
        (
            "192.0.2.9,192.0.2.3,Yes,x\r\n",
            "an address after the first",
        ),
        (
            "192.0.2.0,2001:db8::1,Yes,x\r\n",
            "an address after the first",
        ),
        ("192.0.2.0,192.0.2.3,Maybe,x\r\n", "Yes or No"),
    ] {
        let e = parse_ip_status(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "{bad:?}: {e}");
    }
    assert_eq!(parse_data(&[0xff, 0xfe, 0x00]), Err(CsvError::NotText));
}

#[test]
fn remote_text_is_cut_and_cleaned_and_quotes_are_read() {
    let long = "h".repeat(100_000);
    let row = format!("198.51.100.10,,,1,1,1,RED,,,,0,{long},\"a,b\"\"c\x1b[31m@x\",\r\n");
    let d = parse_data(row.as_bytes()).unwrap();
    assert_eq!(d[0].helo.chars().count(), MAX_TEXT);
    assert_eq!(d[0].mail_from, "a,b\"c[31m@x");
    assert_eq!(d[0].complaint, None);
    assert_eq!(d[0].activity_start, None);
    // an unquoted comma in a reason is the reason's
    let s = parse_ip_status(b"192.0.2.1,192.0.2.1,Yes,Blocked, for spam\r\n").unwrap();
    assert_eq!(s[0].reason, "Blocked, for spam");
}

#[test]
fn too_many_rows_are_refused() {
    let body = "192.0.2.1,192.0.2.1,No,x\n".repeat(MAX_ROWS + 1);
    assert_eq!(parse_ip_status(body.as_bytes()), Err(CsvError::TooManyRows));
}

#[test]
fn times_and_dates() {
    assert_eq!(
        parse_when("9/29/2020 12:03 PM"),
        Ok(Some("2020-09-29 12:03".into()))
    );
    assert_eq!(
        parse_when("9/29/2020 12:03 AM"),
        Ok(Some("2020-09-29 00:03".into()))
    );
    assert_eq!(
        parse_when("9/29/2020 13:03"),
        Ok(Some("2020-09-29 13:03".into()))
    );
    assert_eq!(parse_when("9/29/2020"), Ok(Some("2020-09-29 00:00".into())));
    assert_eq!(parse_when("13:03 PM 9/29/2020"), Err(()));
    assert_eq!(parse_when("9/29/2020 13:03 PM"), Err(()));
    assert_eq!(date_param("2026-12-05").as_deref(), Some("120526"));
    assert_eq!(date_param("garbage"), None);
}

#[test]
fn html_is_told_from_csv() {
    assert!(fetch::looks_like_html(b"\r\n<!DOCTYPE html><html>"));
    assert!(fetch::looks_like_html(b"<HTML><head><title>Sign in"));
    assert!(!fetch::looks_like_html(&fixture("data.csv")));
    assert!(!fetch::looks_like_html(b""));
}

#[test]
fn the_evidence_says_blocked_and_red_with_the_figures() {
    let d = parse_data(&fixture("data.csv")).unwrap();
    let r = Refusal {
        ip: "198.51.100.12".into(),
        blocked: Some("Blocked due to user complaints".into()),
        red: Some(("2026-12-04".into(), d[2].clone())),
    };
    assert_eq!(
        r.evidence(),
        "SNDS: 198.51.100.12 blocked (Blocked due to user complaints); filter result RED on 2026-12-04 (complaint rate 4.2 %, 26 trap hits, 12960 recipients)"
    );
}
