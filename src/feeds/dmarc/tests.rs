use std::io::Write;

use base64::Engine;

use super::*;

const RFC: &str = include_str!("../../../tests/fixtures/dmarc/rfc7489.xml");
const GOOGLE: &str = include_str!("../../../tests/fixtures/dmarc/google.xml");
const MICROSOFT: &str = include_str!("../../../tests/fixtures/dmarc/microsoft.xml");
const YAHOO: &str = include_str!("../../../tests/fixtures/dmarc/yahoo.xml");

/// A report mail as reporters send it: a text part and the attachment, base64.
fn mail(ctype: &str, name: &str, body: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: dmarc@reporter.example\r\nTo: rua@example.com\r\nSubject: Report domain: example.com\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: text/plain\r\n\r\nThis is an aggregate report.\r\n--b1\r\nContent-Type: {ctype}; name=\"{name}\"\r\n\
Content-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zipped(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, b) in members {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn one(raw: &[u8]) -> Result<Report, Reject> {
    let mut v = from_mail(raw, &Limits::default());
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

#[test]
fn rfc_schema_report_reads_every_field() {
    let r = parse_xml(RFC.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(r.org, "receiver.example");
    assert_eq!(r.report_id, "rfc-2026-12-05-0001");
    assert_eq!((r.begin, r.end), (1796428800, 1796515199));
    assert_eq!(r.day(), "2026-12-05");
    assert_eq!(
        (r.domain.as_str(), r.policy.as_str()),
        ("example.com", "none")
    );
    assert_eq!(r.records.len(), 2);
    let a = &r.records[0];
    assert_eq!(a.source_ip.to_string(), "192.0.2.10");
    assert_eq!((a.count, a.disposition.as_str()), (120, "none"));
    assert!(a.passes());
    assert_eq!(a.dkim_results, ["example.com=pass"]);
    assert_eq!(a.spf_results, ["example.com=pass"]);
    let b = &r.records[1];
    assert!(!b.passes(), "a forwarded failure is not a pass");
    assert_eq!(b.spf_results, ["forwarder.example=softfail"]);
}

#[test]
fn reporters_variants_google_zip_microsoft_gzip_yahoo_plain_and_gzip() {
    let g = one(&mail(
        "application/zip",
        "google.com!example.com!1796428800!1796515199.zip",
        &zipped(&[(
            "google.com!example.com!1796428800!1796515199.xml",
            GOOGLE.as_bytes(),
        )]),
    ))
    .unwrap();
    assert_eq!((g.org.as_str(), g.records.len()), ("google.com", 2));
    assert!(
        g.records[1].passes(),
        "DKIM aligned pass with SPF fail passes"
    );
    let m = one(&mail(
        "application/gzip",
        "enterprise.protection.outlook.com!example.com!1796428800!1796515200.xml.gz",
        &gz(MICROSOFT.as_bytes()),
    ))
    .unwrap();
    assert_eq!(
        (m.org.as_str(), m.records[0].count),
        ("Enterprise Outlook", 57)
    );
    let y = one(&mail("text/xml", "yahoo.xml", YAHOO.as_bytes())).unwrap();
    assert_eq!(y.records[0].source_ip.to_string(), "2001:db8::25");
    // gzip labelled as octet-stream (as some reporters do) is known by its magic bytes
    let y2 = one(&mail(
        "application/octet-stream",
        "yahoo.com!example.com.xml.gz",
        &gz(YAHOO.as_bytes()),
    ))
    .unwrap();
    assert_eq!(y, y2);
}

#[test]
fn xxe_and_billion_laughs_are_refused_before_any_entity_exists() {
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]><feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>"#;
    assert_eq!(
        parse_xml(xxe.as_bytes(), &Limits::default()),
        Err(Reject::Dtd)
    );
    let mut lol = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        lol.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    lol.push_str("]><feedback>&lol9;</feedback>");
    let t = std::time::Instant::now();
    assert_eq!(
        one(&mail("text/xml", "r.xml", lol.as_bytes())),
        Err(Reject::Dtd)
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
    // an entity used without a DTD is an error too, never a lookup
    let undeclared = RFC.replace("receiver.example</org_name>", "&xxe;</org_name>");
    assert!(matches!(
        parse_xml(undeclared.as_bytes(), &Limits::default()),
        Err(Reject::Malformed(_))
    ));
}

#[test]
fn zip_and_gzip_bombs_stop_at_the_cap() {
    let limits = Limits {
        max_xml: 1 << 20,
        ..Limits::default()
    };
    // 64 MiB of zeros inflates from ~64 KiB; read stops at 1 MiB + 1 byte
    let zeros = vec![b' '; 64 << 20];
    let bomb = zipped(&[("a.xml", &zeros)]);
    let gz_bomb = gz(&zeros);
    assert!(bomb.len() < 1 << 20 && gz_bomb.len() < 1 << 20);
    // only the reading is timed: it stops at the cap instead of inflating 64 MiB
    let t = std::time::Instant::now();
    assert_eq!(
        from_attachment(Packing::Zip, &bomb, &limits),
        vec![Err(Reject::Oversized(1 << 20))]
    );
    assert_eq!(
        from_attachment(Packing::Gzip, &gz_bomb, &limits),
        vec![Err(Reject::Oversized(1 << 20))]
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    // the cap is on the zip's total: many members each under it add up
    let half = vec![b' '; 600 << 10];
    let many = zipped(&[("a.xml", &half), ("b.xml", &half), ("c.xml", &half)]);
    let r = from_attachment(Packing::Zip, &many, &limits);
    assert!(r.contains(&Err(Reject::Oversized(1 << 20))), "{r:?}");
}

#[test]
fn no_report_garbage_and_broken_reports_are_rejected_with_a_reason() {
    let plain = b"From: a@b.example\r\nSubject: hi\r\n\r\nJust text, no report.\r\n";
    assert_eq!(one(plain), Err(Reject::NoReport));
    let bad_zip = one(&mail("application/zip", "r.zip", b"PK\x03\x04garbage"));
    assert!(matches!(bad_zip, Err(Reject::Malformed(_))), "{bad_zip:?}");
    let bad_gz = one(&mail(
        "application/gzip",
        "r.xml.gz",
        &[0x1f, 0x8b, 8, 0, 1, 2, 3],
    ));
    assert!(matches!(bad_gz, Err(Reject::Malformed(_))), "{bad_gz:?}");
    let not_xml = one(&mail(
        "application/gzip",
        "r.xml.gz",
        &gz(b"\x00\x01 not xml"),
    ));
    assert!(matches!(not_xml, Err(Reject::Malformed(_))), "{not_xml:?}");
    let other = one(&mail("text/xml", "r.xml", b"<?xml version=\"1.0\"?><rss/>"));
    assert!(matches!(other, Err(Reject::Invalid(_))), "{other:?}");
    let no_id = RFC.replace("<report_id>rfc-2026-12-05-0001</report_id>", "");
    assert_eq!(
        parse_xml(no_id.as_bytes(), &Limits::default()),
        Err(Reject::Invalid("no report_id".into()))
    );
    let bad_ip = RFC.replace("192.0.2.10", "not-an-ip");
    assert!(matches!(
        parse_xml(bad_ip.as_bytes(), &Limits::default()),
        Err(Reject::Invalid(_))
    ));
    assert!(one(b"\x00\xff\xfe garbage").is_err());
    // kinds are the stored names
    assert_eq!(Reject::Dtd.kind(), "dtd");
    assert_eq!(Reject::Oversized(1).kind(), "oversized");
}
