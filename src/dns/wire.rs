//! Encoding queries and decoding answers.
//!
//! A query is 12 header bytes plus one question: simple enough to write by
//! hand, which keeps the hot path allocation-light. Answers with records are
//! decoded by hickory-proto (name compression, TXT strings); the common
//! NXDOMAIN/NODATA answer is decided from the header and, for its negative
//! TTL, a walk over the authority section's SOA, without building a message.

use hickory_proto::op::Message;
use hickory_proto::rr::RData;

use super::{QType, QueryError, Rcode, Response};

/// The longest query: the header, a name of 255 bytes on the wire, type and class.
pub const MAX_QUERY: usize = 12 + 255 + 4;

/// An encoded query kept inline, so a query costs no allocation.
#[derive(Clone, Copy)]
pub struct QueryPacket {
    len: u16,
    bytes: [u8; MAX_QUERY],
}

impl QueryPacket {
    /// Encodes a query (RD set when `recursion`, no EDNS) with the given id.
    pub fn encode(id: u16, qname: &str, qtype: QType, recursion: bool) -> Result<Self, QueryError> {
        let name = qname.strip_suffix('.').unwrap_or(qname);
        if name.len() > 253 {
            return Err(QueryError::BadName("longer than 253 bytes".into()));
        }
        let mut p = QueryPacket {
            len: 0,
            bytes: [0; MAX_QUERY],
        };
        let b = &mut p.bytes;
        b[..2].copy_from_slice(&id.to_be_bytes());
        b[2..12].copy_from_slice(&[u8::from(recursion), 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        let mut at = 12;
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(QueryError::BadName("empty or over-long label".into()));
            }
            b[at] = label.len() as u8;
            b[at + 1..at + 1 + label.len()].copy_from_slice(label.as_bytes());
            at += 1 + label.len();
        }
        // at most 12 + 254 here (a name of 253 bytes is 255 on the wire with its root)
        b[at] = 0;
        b[at + 1..at + 3].copy_from_slice(&qtype.code().to_be_bytes());
        b[at + 3..at + 5].copy_from_slice(&[0, 1]);
        p.len = (at + 5) as u16;
        Ok(p)
    }

    /// The datagram.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Sets the message id.
    pub fn set_id(&mut self, id: u16) {
        self.bytes[..2].copy_from_slice(&id.to_be_bytes());
    }

    /// The question section (what an answer must echo).
    pub fn question(&self) -> &[u8] {
        question(self.as_bytes())
    }
}

impl AsRef<[u8]> for QueryPacket {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Encodes a query (RD set when `recursion`, no EDNS) with the given id.
pub fn encode_query(
    id: u16,
    qname: &str,
    qtype: QType,
    recursion: bool,
    buf: &mut Vec<u8>,
) -> Result<(), QueryError> {
    let p = QueryPacket::encode(id, qname, qtype, recursion)?;
    buf.clear();
    buf.extend_from_slice(p.as_bytes());
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
    let ar = u16::from_be_bytes([packet[10], packet[11]]);
    if an == 0 && ar == 0 {
        if let Some(neg) = negative_ttl_fast(packet, question.len()) {
            r.neg_ttl = neg;
            return Ok(r);
        }
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

/// The negative TTL of an answer without answer or additional records, read
/// straight from its authority section (RFC 2308: min(SOA TTL, SOA minimum),
/// the last SOA's): `Some(None)` when it holds no SOA, `None` when the walk
/// does not end cleanly (then hickory-proto decides, and refuses a bad packet).
///
/// An NXDOMAIN from an authoritative server (rbldnsd) carries its SOA, and it
/// is the answer to nearly every query of a sweep, so it is worth not building
/// a whole `Message` for it.
fn negative_ttl_fast(packet: &[u8], question_len: usize) -> Option<Option<u32>> {
    let ns = u16::from_be_bytes([packet[8], packet[9]]);
    let mut at = 12 + question_len;
    let mut neg = None;
    for _ in 0..ns {
        at = skip_name(packet, at)?;
        let fixed = packet.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let start = at + 10;
        let end = start + rdlen;
        packet.get(start..end)?;
        if rtype == 6 {
            // MNAME, RNAME, then serial, refresh, retry, expire, minimum: exactly to the end
            let after = skip_name(packet, skip_name(packet, start)?)?;
            if after + 20 != end {
                return None;
            }
            let m = &packet[end - 4..end];
            neg = Some(ttl.min(u32::from_be_bytes([m[0], m[1], m[2], m[3]])));
        }
        at = end;
    }
    (at == packet.len()).then_some(neg)
}

/// The offset just past the (possibly compressed) name at `at`; `None` if it
/// runs off the packet or a pointer does not point back into the packet.
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            1..=63 => at += 1 + len as usize,
            0xc0..=0xff => {
                let ptr = (usize::from(len & 0x3f) << 8) | usize::from(*packet.get(at + 1)?);
                return (ptr < at).then_some(at + 2);
            }
            _ => return None,
        }
    }
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
        // the longest name fits inline; one byte more is refused
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(longest.len(), 253);
        let p = QueryPacket::encode(7, &longest, QType::Txt, false).unwrap();
        assert_eq!(p.as_bytes().len(), MAX_QUERY);
        assert_eq!(
            Message::from_vec(p.as_bytes()).unwrap().queries[0]
                .name()
                .to_ascii(),
            format!("{longest}.")
        );
        assert!(QueryPacket::encode(7, &format!("{longest}b"), QType::A, false).is_err());
    }

    #[test]
    fn the_negative_ttl_is_read_without_hickory_and_as_hickory_reads_it() {
        use hickory_proto::rr::rdata::SOA;
        let mut q = Vec::new();
        encode_query(0x4321, "9.0.0.127.bl.test.", QType::A, false, &mut q).unwrap();
        let qm = Message::from_vec(&q).unwrap();
        let mut m = Message::new(0x4321, MessageType::Response, OpCode::Query);
        m.add_query(qm.queries[0].clone());
        m.metadata.response_code = hickory_proto::op::ResponseCode::NXDomain;
        let zone = Name::from_ascii("bl.test.").unwrap();
        let soa = SOA::new(
            Name::from_ascii("ns.bl.test.").unwrap(),
            Name::from_ascii("hostmaster.bl.test.").unwrap(),
            1,
            3600,
            600,
            86400,
            60,
        );
        m.authorities.push(Record::from_rdata(
            zone.clone(),
            300,
            RData::SOA(soa.clone()),
        ));
        let bytes = m.to_vec().unwrap();
        let r = decode_answer(&bytes, question(&q)).unwrap();
        assert_eq!((r.rcode, r.neg_ttl), (Rcode::NxDomain, Some(60)));
        assert_eq!(
            negative_ttl_fast(&bytes, question(&q).len()),
            Some(Some(60))
        );
        // a TTL under the SOA minimum wins
        m.authorities[0] = Record::from_rdata(zone.clone(), 10, RData::SOA(soa));
        let bytes = m.to_vec().unwrap();
        assert_eq!(
            decode_answer(&bytes, question(&q)).unwrap().neg_ttl,
            Some(10)
        );
        // cut anywhere in the authority section: refused, never an answer
        for cut in 12 + question(&q).len() + 1..bytes.len() {
            assert_eq!(negative_ttl_fast(&bytes[..cut], question(&q).len()), None);
            assert!(
                decode_answer(&bytes[..cut], question(&q)).is_err(),
                "cut at {cut}"
            );
        }
    }
}
