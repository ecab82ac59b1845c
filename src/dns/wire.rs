//! Encoding queries and decoding answers.
//!
//! A query is 12 header bytes plus one question: simple enough to write by
//! hand, which keeps the hot path allocation-light. Answers with records are
//! decoded by hickory-proto (name compression, TXT strings); the common
//! NXDOMAIN/NODATA answer is decided from the header alone.

use hickory_proto::op::Message;
use hickory_proto::rr::RData;

use super::{QType, QueryError, Rcode, Response};

/// Encodes a query (RD set when `recursion`, no EDNS) with the given id.
pub fn encode_query(
    id: u16,
    qname: &str,
    qtype: QType,
    recursion: bool,
    buf: &mut Vec<u8>,
) -> Result<(), QueryError> {
    buf.clear();
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&[u8::from(recursion), 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let name = qname.strip_suffix('.').unwrap_or(qname);
    if name.len() > 253 {
        return Err(QueryError::BadName("longer than 253 bytes".into()));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(QueryError::BadName("empty or over-long label".into()));
        }
        buf.push(label.len() as u8);
        buf.extend_from_slice(label.as_bytes());
    }
    buf.push(0);
    buf.extend_from_slice(&qtype.code().to_be_bytes());
    buf.extend_from_slice(&[0, 1]);
    Ok(())
}

/// The question section of an encoded query (what an answer must echo).
pub fn question(query: &[u8]) -> &[u8] {
    query.get(12..).unwrap_or(&[])
}

/// The id of a datagram.
pub fn id_of(packet: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*packet.first()?, *packet.get(1)?]))
}

/// Whether `packet` is a response (QR, opcode QUERY) with exactly one
/// question, equal to `question` (name case-insensitively, type and class).
/// Anything else belongs to another query or is spoofed.
pub fn echoes_question(packet: &[u8], question: &[u8]) -> bool {
    packet.len() >= 12 + question.len()
        && packet[2] & 0x80 != 0
        && packet[2] & 0x78 == 0
        && packet[4..6] == [0, 1]
        && packet[12..12 + question.len()].eq_ignore_ascii_case(question)
}

/// The name in a question section, lower-cased, with a trailing dot.
fn question_name(question: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&len) = question.get(i) {
        if len == 0 {
            break;
        }
        let label = question.get(i + 1..i + 1 + len as usize).unwrap_or(&[]);
        out.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        out.push('.');
        i += 1 + len as usize;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Decodes an answer to a query whose question section was `question`.
///
/// Refused (an error, so the verdict is `unknown`, never `clear`): a packet
/// that does not echo the question exactly, and an answer whose A or TXT
/// records all belong to another name. Records are kept only when owned by
/// the question name (or a name it is a CNAME for).
pub fn decode_answer(packet: &[u8], question: &[u8]) -> Result<Response, QueryError> {
    if packet.len() < 12 {
        return Err(QueryError::Malformed("shorter than a DNS header".into()));
    }
    if !echoes_question(packet, question) {
        return Err(QueryError::Malformed(
            "the answer does not echo the question".into(),
        ));
    }
    let an = u16::from_be_bytes([packet[6], packet[7]]);
    let ns = u16::from_be_bytes([packet[8], packet[9]]);
    let rcode = Rcode::from_u8(packet[3] & 0x0f);
    let truncated = packet[2] & 0x02 != 0;
    let mut r = Response {
        rcode,
        truncated,
        ..Response::default()
    };
    if an == 0 && ns == 0 {
        return Ok(r);
    }
    let msg = Message::from_vec(packet).map_err(|e| QueryError::Malformed(e.to_string()))?;
    // owners we accept: the question name, and what it is an alias for
    let mut owners = vec![question_name(question)];
    for rec in &msg.answers {
        if let RData::CNAME(c) = &rec.data {
            if owners.contains(&rec.name.to_ascii().to_ascii_lowercase()) {
                owners.push(c.0.to_ascii().to_ascii_lowercase());
            }
        }
    }
    let mut foreign = 0;
    for rec in &msg.answers {
        let owned = owners.contains(&rec.name.to_ascii().to_ascii_lowercase());
        match &rec.data {
            RData::A(_) | RData::TXT(_) if !owned => foreign += 1,
            RData::A(a) => {
                r.a.push(a.0);
                r.ttl = Some(r.ttl.map_or(rec.ttl, |t: u32| t.min(rec.ttl)));
            }
            RData::TXT(t) => {
                let mut s = String::new();
                for part in t.txt_data.iter() {
                    s.push_str(&String::from_utf8_lossy(part));
                }
                r.txt.push(s);
                r.ttl = Some(r.ttl.map_or(rec.ttl, |t: u32| t.min(rec.ttl)));
            }
            _ => {}
        }
    }
    if foreign > 0 && r.a.is_empty() && r.txt.is_empty() {
        return Err(QueryError::Malformed(format!(
            "{foreign} answer record(s) for another name than {}",
            owners[0]
        )));
    }
    // RFC 2308: a negative answer may be cached for min(SOA TTL, SOA minimum)
    if r.a.is_empty() {
        for rec in &msg.authorities {
            if let RData::SOA(soa) = &rec.data {
                r.neg_ttl = Some(rec.ttl.min(soa.minimum));
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::{rdata, Name, RData, Record, RecordType};

    #[test]
    fn round_trip_through_hickory() {
        let mut q = Vec::new();
        encode_query(0x1234, "2.0.0.127.bl.test.", QType::A, true, &mut q).unwrap();
        let parsed = Message::from_vec(&q).unwrap();
        assert_eq!(parsed.metadata.id, 0x1234);
        assert_eq!(parsed.queries[0].name().to_ascii(), "2.0.0.127.bl.test.");
        assert_eq!(parsed.queries[0].query_type(), RecordType::A);

        let name = Name::from_ascii("2.0.0.127.BL.test.").unwrap();
        let mut m = Message::new(0x1234, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.answers.push(Record::from_rdata(
            name.clone(),
            10,
            RData::A(rdata::A("127.0.0.2".parse().unwrap())),
        ));
        m.answers.push(Record::from_rdata(
            name.clone(),
            7,
            RData::A(rdata::A("127.0.0.10".parse().unwrap())),
        ));
        let bytes = m.to_vec().unwrap();
        let r = decode_answer(&bytes, question(&q)).unwrap();
        assert_eq!(r.rcode, Rcode::NoError);
        assert_eq!(r.a.len(), 2);
        assert_eq!(r.ttl, Some(7));

        let mut other = Vec::new();
        encode_query(0x1234, "3.0.0.127.bl.test.", QType::A, true, &mut other).unwrap();
        assert!(decode_answer(&bytes, question(&other)).is_err());
        assert!(decode_answer(&bytes[..5], question(&q)).is_err());
        assert!(encode_query(1, "a..b", QType::A, true, &mut other).is_err());
    }
}
