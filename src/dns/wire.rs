//! Encoding queries and decoding answers.
//!
//! A query is 12 header bytes plus one question: simple enough to write by
//! hand, which keeps the hot path allocation-light. Answers with records are
//! decoded by hickory-proto (name compression, TXT strings); the common
//! NXDOMAIN/NODATA answer is decided from the header alone.

use hickory_proto::op::Message;
use hickory_proto::rr::RData;

use super::{QType, QueryError, Rcode, Response};

/// Encodes a recursive query (RD set, no EDNS) with the given id.
pub fn encode_query(
    id: u16,
    qname: &str,
    qtype: QType,
    buf: &mut Vec<u8>,
) -> Result<(), QueryError> {
    buf.clear();
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
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

/// Decodes an answer to a query whose question section was `question`.
///
/// Answers that do not echo the question (case-insensitively) are refused:
/// they belong to another query or are spoofed.
pub fn decode_answer(packet: &[u8], question: &[u8]) -> Result<Response, QueryError> {
    if packet.len() < 12 {
        return Err(QueryError::Malformed("shorter than a DNS header".into()));
    }
    if packet[2] & 0x80 == 0 {
        return Err(QueryError::Malformed("not a response".into()));
    }
    let qd = u16::from_be_bytes([packet[4], packet[5]]);
    let an = u16::from_be_bytes([packet[6], packet[7]]);
    let rcode = Rcode::from_u8(packet[3] & 0x0f);
    let truncated = packet[2] & 0x02 != 0;
    if qd == 1 {
        let echoed = packet
            .get(12..12 + question.len())
            .ok_or_else(|| QueryError::Malformed("question cut short".into()))?;
        if !echoed.eq_ignore_ascii_case(question) {
            return Err(QueryError::Malformed(
                "answer is for another question".into(),
            ));
        }
    } else if !(qd == 0 && rcode != Rcode::NoError) {
        return Err(QueryError::Malformed(format!(
            "{qd} questions in the answer"
        )));
    }
    if an == 0 {
        return Ok(Response {
            rcode,
            truncated,
            ..Response::default()
        });
    }
    let msg = Message::from_vec(packet).map_err(|e| QueryError::Malformed(e.to_string()))?;
    let mut r = Response {
        rcode,
        truncated,
        ..Response::default()
    };
    for rec in &msg.answers {
        r.ttl = Some(r.ttl.map_or(rec.ttl, |t: u32| t.min(rec.ttl)));
        match &rec.data {
            RData::A(a) => r.a.push(a.0),
            RData::TXT(t) => {
                let mut s = String::new();
                for part in t.txt_data.iter() {
                    s.push_str(&String::from_utf8_lossy(part));
                }
                r.txt.push(s);
            }
            _ => {}
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
        encode_query(0x1234, "2.0.0.127.bl.test.", QType::A, &mut q).unwrap();
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
        encode_query(0x1234, "3.0.0.127.bl.test.", QType::A, &mut other).unwrap();
        assert!(decode_answer(&bytes, question(&other)).is_err());
        assert!(decode_answer(&bytes[..5], question(&q)).is_err());
        assert!(encode_query(1, "a..b", QType::A, &mut other).is_err());
    }
}
