//! getmeas on /measure (facts sheet §2): the token it needs, the shape of
//! its answer, its filters, pagination, and groups updated in place, removed
//! or given as raw JSON.

use super::{api, assert_invalid_token, getmeas, grpids};
use crate::fake_withings::{FakeWithings, Group, FAKE_DEVICEID};

#[test]
fn getmeas_requires_a_valid_token() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    assert_invalid_token(&api(&fake, "/measure", None, &[("action", "getmeas")]));
    assert_invalid_token(&getmeas(
        &fake,
        "0123456789abcdef0123456789abcdef01234567",
        &[],
    ));
    // Legacy: access_token as a form field.
    let v = api(
        &fake,
        "/measure",
        None,
        &[("action", "getmeas"), ("access_token", a.as_str())],
    );
    assert_eq!(v["status"], 0);
    let v = getmeas(&fake, &a, &[("action", "getmeasure")]);
    assert_eq!(v["status"], 503, "unknown action");
}

#[test]
fn getmeas_answers_the_documented_shape() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(
        1,
        Group::weight(2_726_375_354, 1_700_000_000, 1_700_000_100, 65750, -3),
    );
    let mut manual = Group::weight(11, 1_700_000_500, 1_700_000_600, 70000, -3);
    manual.attrib = 2;
    manual.deviceid = None;
    fake.add_group(1, manual);
    fake.advance_clock(1000);
    let now = fake.now();
    let v = getmeas(&fake, &a, &[("category", "1")]);
    assert_eq!(v["status"], 0);
    let b = &v["body"];
    let updatetime = b["updatetime"].as_u64().expect("integer updatetime");
    assert!(updatetime >= now && updatetime <= now + 2);
    assert_eq!(b["timezone"], "Europe/Paris");
    assert_eq!(b["more"], 0);
    assert_eq!(b["offset"], 0);
    let g = &b["measuregrps"][0];
    assert_eq!(g["grpid"], 2_726_375_354_i64);
    assert_eq!(g["attrib"], 0);
    assert_eq!(g["date"], 1_700_000_000);
    assert_eq!(g["created"], 1_700_000_000);
    assert_eq!(g["modified"], 1_700_000_100);
    assert_eq!(g["category"], 1);
    assert_eq!(g["deviceid"], FAKE_DEVICEID);
    assert_eq!(g["hash_deviceid"], FAKE_DEVICEID);
    assert_eq!(g["model"], "Body+");
    assert!(g["modelid"].is_number());
    assert!(g["comment"].is_null());
    assert_eq!(g["apppfmid"], 7);
    assert_eq!(
        g["measures"],
        serde_json::json!([{"value": 65750, "type": 1, "unit": -3, "algo": 0, "fm": 3}])
    );
    let m = &b["measuregrps"][1];
    assert_eq!(m["attrib"], 2);
    assert!(m["deviceid"].is_null() && m["hash_deviceid"].is_null() && m["model"].is_null());
}

#[test]
fn getmeas_filters_by_category_lastupdate_dates_and_types() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(1, 1000, 1500, 80000, -3));
    fake.add_group(1, Group::blood_pressure(2, 2000, 2500, 120, 80, 60));
    let mut goal = Group::weight(3, 3000, 3500, 75000, -3);
    goal.category = 2;
    fake.add_group(1, goal);
    fake.add_group(2, Group::weight(4, 1000, 1500, 90000, -3));

    assert_eq!(
        grpids(&getmeas(&fake, &a, &[])),
        vec![1, 2, 3],
        "own groups only"
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("category", "1")])),
        vec![1, 2]
    );
    assert_eq!(grpids(&getmeas(&fake, &a, &[("category", "2")])), vec![3]);
    // lastupdate is inclusive.
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("lastupdate", "2500")])),
        vec![2, 3]
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("lastupdate", "2501")])),
        vec![3]
    );
    assert_eq!(
        grpids(&getmeas(
            &fake,
            &a,
            &[("startdate", "1000"), ("enddate", "2000")]
        )),
        vec![1, 2]
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("startdate", "1001")])),
        vec![2, 3]
    );
    let v = getmeas(&fake, &a, &[("meastypes", "9,10")]);
    assert_eq!(grpids(&v), vec![2]);
    let types: Vec<i64> = v["body"]["measuregrps"][0]["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_i64().unwrap())
        .collect();
    assert_eq!(types, vec![10, 9], "only the requested measures");
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("meastype", "1")])),
        vec![1, 3]
    );
    let v = getmeas(&fake, &a, &[("lastupdate", "soon")]);
    assert_eq!(v["status"], 503);
}

#[test]
fn lastupdate_is_inclusive_by_default_and_exclusive_on_request() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(1, 900, 1000, 80000, -3));
    fake.add_group(1, Group::blood_pressure(2, 1000, 1000, 120, 80, 60));
    fake.add_group(1, Group::weight(3, 1000, 1001, 80100, -3));
    let at = |l: &str| grpids(&getmeas(&fake, &a, &[("lastupdate", l)]));
    assert_eq!(
        at("1000"),
        vec![1, 2, 3],
        "inclusive: the boundary second is returned"
    );
    fake.set_lastupdate_exclusive(true);
    assert_eq!(
        at("1000"),
        vec![3],
        "exclusive: only after the boundary second"
    );
    assert_eq!(at("999"), vec![1, 2, 3]);
    fake.set_lastupdate_exclusive(false);
    assert_eq!(at("1001"), vec![3]);
}

#[test]
fn raw_groups_are_served_as_given_and_filtered_on_what_is_readable() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(1, 900, 1000, 80000, -3));
    fake.add_group(1, Group::weight(3, 1900, 2000, 80100, -3));
    let odd = serde_json::json!({
        "grpid": 2, "date": 1400, "modified": 1500, "category": 1, "model": 10,
        "measures": [{"value": "abc", "type": 1, "unit": -3}]
    });
    fake.add_raw_group(1, odd.clone());
    // No modified: date stands in, as a 2014 answer had it.
    fake.add_raw_group(
        1,
        serde_json::json!({"grpid": 4, "date": 1700, "category": 1}),
    );
    let mut goal = odd.clone();
    goal["grpid"] = 5.into();
    goal["category"] = 2.into();
    fake.add_raw_group(1, goal);

    let v = getmeas(&fake, &a, &[("category", "1")]);
    assert_eq!(
        grpids(&v),
        vec![1, 2, 4, 3],
        "sorted by modified among the typed ones"
    );
    assert_eq!(v["body"]["measuregrps"][1], odd, "served exactly as given");
    assert_eq!(grpids(&getmeas(&fake, &a, &[("category", "2")])), vec![5]);
    let at = |l: &str| grpids(&getmeas(&fake, &a, &[("category", "1"), ("lastupdate", l)]));
    assert_eq!(at("1500"), vec![2, 4, 3]);
    assert_eq!(at("1700"), vec![4, 3]);
    fake.set_lastupdate_exclusive(true);
    assert_eq!(at("1500"), vec![4, 3]);
    assert_eq!(
        grpids(&getmeas(
            &fake,
            &a,
            &[("category", "1"), ("startdate", "1401")]
        )),
        vec![4, 3]
    );
}

#[test]
fn getmeas_sorts_and_paginates_with_offset_and_more() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    // Inserted out of order; sorted by (modified, grpid).
    for (grpid, modified) in [(50, 300), (10, 100), (40, 200), (30, 200), (20, 100)] {
        fake.add_group(1, Group::weight(grpid, modified - 50, modified, 70000, -3));
    }
    fake.set_page_size(2);
    let p1 = getmeas(&fake, &a, &[]);
    assert_eq!(grpids(&p1), vec![10, 20]);
    assert_eq!(p1["body"]["more"], 1);
    assert_eq!(p1["body"]["offset"], 2);
    let p2 = getmeas(&fake, &a, &[("offset", "2")]);
    assert_eq!(grpids(&p2), vec![30, 40]);
    assert_eq!(p2["body"]["more"], 1);
    assert_eq!(p2["body"]["offset"], 4);
    let p3 = getmeas(&fake, &a, &[("offset", "4")]);
    assert_eq!(grpids(&p3), vec![50]);
    assert_eq!(p3["body"]["more"], 0);

    fake.set_more_as_bool(true);
    assert_eq!(getmeas(&fake, &a, &[])["body"]["more"], true);
    assert_eq!(
        getmeas(&fake, &a, &[("offset", "4")])["body"]["more"],
        false
    );
    assert_eq!(
        grpids(&getmeas(&fake, &a, &[("offset", "9")])),
        Vec::<i64>::new()
    );
}

#[test]
fn add_group_with_same_grpid_updates_in_place_and_remove_deletes() {
    let fake = FakeWithings::start();
    let (a, _) = fake.issue_tokens(1);
    fake.add_group(1, Group::weight(9, 1000, 1000, 80000, -3));
    fake.add_group(1, Group::weight(8, 1100, 1100, 81000, -3));
    fake.add_group(1, Group::weight(9, 1000, 2000, 79000, -3));
    let v = getmeas(&fake, &a, &[("lastupdate", "1500")]);
    assert_eq!(grpids(&v), vec![9]);
    assert_eq!(v["body"]["measuregrps"][0]["measures"][0]["value"], 79000);
    assert_eq!(grpids(&getmeas(&fake, &a, &[])), vec![8, 9]);
    assert!(fake.remove_group(1, 8));
    assert_eq!(grpids(&getmeas(&fake, &a, &[])), vec![9]);
}
