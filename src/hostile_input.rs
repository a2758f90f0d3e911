//! Everything the relay parses comes from the network: random and
//! mutated inputs must give an error, never a panic (which would kill the
//! relay). A cheap stand-in for a fuzzer that runs in every CI run.

use crate::inbound::webhook::parse_notification;
use crate::mqtt::packet;
use crate::record::{Record, RecordView};
use crate::weburl::BaseUrl;
use crate::withings::api::{envelope_body, parse_envelope};
use crate::withings::measure::parse_page;

/// xorshift32: deterministic, so a failure can be replayed.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }
}

const SEEDS: &[&[u8]] = &[
    b"userid=12345&appli=1&startdate=1530576000&enddate=1530698753&foo=bar",
    b"--XyZ\r\nContent-Disposition: form-data; name=\"userid\"\r\n\r\n42\r\n--XyZ--\r\n",
    br#"{"status":0,"body":{"measuregrps":[{"grpid":2726375354,"attrib":0,"date":1,"modified":2,"category":1,"deviceid":null,"measures":[{"value":65750,"type":1,"unit":-3}]}],"more":1,"offset":1}}"#,
    br#"{"status":401,"body":{},"error":"invalid_token"}"#,
    br#"{"userid":"7","grpid":9,"date":1,"time":"t","measures":[{"name":"weight","value":72.5,"unit":"kg","position":3}]}"#,
    b"https://relay.example.org:443/withings",
    &[0x20, 0x02, 0x00, 0x00, 0x40, 0x02, 0x00, 0x01, 0xd0, 0x00, 0x30, 0x05, 0x00, 0x01, b'a', b'x', b'y'],
];
const ALPHABET: &[u8] = b"=&%+-0123456789abcdefuserid{}[]\":,.\\\r\n \x00\xff\x7f";

/// A seed with random bytes replaced, inserted, deleted or truncated.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = if v.is_empty() { 0 } else { rng.below(v.len()) };
        match rng.below(4) {
            0 if !v.is_empty() => v[at] = ALPHABET[rng.below(ALPHABET.len())],
            1 => v.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            2 if !v.is_empty() => {
                v.remove(at);
            }
            _ => v.truncate(at),
        }
    }
    v
}

/// Runs every parser; returns whether the form parsed as a notification
/// and whether the text parsed as a getmeas page, so the tests can show
/// both outcomes were reached.
fn parse_everything(input: &[u8]) -> (bool, bool) {
    let form_ok = parse_notification(input, None, 0).is_ok();
    let mut page_ok = false;
    let _ = parse_notification(input, Some("multipart/form-data; boundary=XyZ"), 0);
    let _ = packet::read_incoming(&mut &input[..], 64 * 1024);
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = parse_envelope("fuzz", text);
        if let Ok(body) = envelope_body("fuzz", text) {
            page_ok = parse_page(body).is_ok_and(|page| {
                // Accepted groups are turned into records, decimals and all.
                for group in page.measuregrps.iter().flatten() {
                    let _ = Record::from_group("1", group).to_json_line();
                }
                true
            });
        }
        let _ = parse_page(text);
        let _ = RecordView::parse(text);
        let _ = BaseUrl::parse(text);
    }
    (form_ok, page_ok)
}

#[test]
fn mutated_inputs_never_panic_any_parser() {
    let mut rng = Rng(0x5eed_1234);
    let (mut forms, mut pages) = ([0; 2], [0; 2]);
    for round in 0..20_000 {
        let seed = SEEDS[round % SEEDS.len()];
        let (form_ok, page_ok) = parse_everything(&mutate(&mut rng, seed));
        forms[usize::from(form_ok)] += 1;
        pages[usize::from(page_ok)] += 1;
    }
    // Both accepted and refused inputs were reached, so the parsers' inner
    // paths ran, not only their first check.
    assert!(
        forms[0] > 0 && forms[1] > 0,
        "notifications refused/accepted: {forms:?}"
    );
    assert!(
        pages[0] > 0 && pages[1] > 0,
        "pages refused/accepted: {pages:?}"
    );
}

#[test]
fn random_bytes_never_panic_any_parser() {
    let mut rng = Rng(0xdead_beef);
    for _ in 0..20_000 {
        let len = rng.below(64);
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let (form_ok, _) = parse_everything(&input);
        assert!(
            !form_ok || input.windows(7).any(|w| w == b"userid="),
            "{input:?}"
        );
    }
}
