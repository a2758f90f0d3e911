//! /measure, action getmeas (§2): filters, lastupdate, pagination, and the
//! groups as Withings serializes them.

use serde_json::{json, Value};

use super::requests::{call_token, error_json, int_param, ok_json, param, unauthorized, Reply};
use super::state::{lock, Shared};
use super::{Call, Group, TIMEZONE};

/// §2: POST /measure action=getmeas with filters and offset/more pagination.
pub(super) fn measure(shared: &Shared, call: &Call) -> Reply {
    let mut st = lock(shared);
    let Some(userid) = st.authenticate(call_token(call)) else {
        return unauthorized();
    };
    if param(call, "action") != Some("getmeas") {
        return Reply::Json(error_json(503, "Invalid Params: action"));
    }
    let parsed = (|| {
        Ok::<_, Reply>((
            int_param(call, "category")?,
            int_param(call, "lastupdate")?,
            int_param(call, "startdate")?,
            int_param(call, "enddate")?,
            int_param(call, "offset")?,
        ))
    })();
    let (category, lastupdate, startdate, enddate, offset) = match parsed {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let mut types: Vec<i32> = Vec::new();
    for name in ["meastype", "meastypes"] {
        if let Some(v) = param(call, name) {
            for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                match t.parse::<i32>() {
                    Ok(t) => types.push(t),
                    Err(_) => {
                        return Reply::Json(error_json(503, &format!("Invalid Params: {name}")))
                    }
                }
            }
        }
    }
    let exclusive = st.lastupdate_exclusive;
    let user = &st.users[&userid];
    // (modified, grpid, JSON): the sort key and what is served.
    let typed = user
        .groups
        .values()
        .filter(|g| category.is_none_or(|c| g.category == c))
        // Whether lastupdate is inclusive is UNCONFIRMED (§2.3): inclusive unless
        // set_lastupdate_exclusive, so clients must both dedupe and not lose the boundary.
        .filter(|g| lastupdate.is_none_or(|l| after_lastupdate(g.modified, l, exclusive)))
        .filter(|g| startdate.is_none_or(|s| g.date >= s))
        .filter(|g| enddate.is_none_or(|e| g.date <= e))
        .filter_map(|g| {
            if types.is_empty() {
                return Some(g.clone());
            }
            let mut g = g.clone();
            g.measures.retain(|m| types.contains(&m.type_));
            (!g.measures.is_empty()).then_some(g)
        })
        .map(|g| (g.modified, g.grpid, group_json(&g)));
    let raw = user.raw_groups.iter().filter_map(|g| {
        let int = |key: &str| g.get(key).and_then(Value::as_i64);
        let modified = int("modified").or(int("date")).unwrap_or(i64::MIN);
        let keep = int("category").is_none_or(|c| category.is_none_or(|want| c == want))
            && lastupdate.is_none_or(|l| after_lastupdate(modified, l, exclusive))
            && startdate.is_none_or(|s| int("date").is_some_and(|d| d >= s))
            && enddate.is_none_or(|e| int("date").is_some_and(|d| d <= e));
        keep.then(|| (modified, int("grpid").unwrap_or(0), g.clone()))
    });
    let mut groups: Vec<(i64, i64, Value)> = typed.chain(raw).collect();
    groups.sort_by_key(|(modified, grpid, _)| (*modified, *grpid));
    let start = offset.unwrap_or(0).max(0) as usize;
    let end = start.saturating_add(st.page_size).min(groups.len());
    let page = groups.get(start..end).unwrap_or(&[]);
    let more = end < groups.len();
    let next_offset = if more { end } else { 0 };
    let more_json = if st.more_as_bool {
        json!(more)
    } else {
        json!(u8::from(more))
    };
    let measuregrps: Vec<Value> = page.iter().map(|(_, _, g)| g.clone()).collect();
    Reply::Json(ok_json(json!({
        "updatetime": st.now(),
        "timezone": TIMEZONE,
        "measuregrps": measuregrps,
        "more": more_json,
        "offset": next_offset,
    })))
}

/// Whether a group modified at `modified` is "created or modified after" `lastupdate` (§2).
fn after_lastupdate(modified: i64, lastupdate: i64, exclusive: bool) -> bool {
    if exclusive {
        modified > lastupdate
    } else {
        modified >= lastupdate
    }
}

fn group_json(g: &Group) -> Value {
    let device = g.deviceid.is_some();
    let measures: Vec<Value> = g
        .measures
        .iter()
        .map(|m| json!({ "value": m.value, "type": m.type_, "unit": m.unit, "algo": 0, "fm": 3 }))
        .collect();
    json!({
        "grpid": g.grpid,
        "attrib": g.attrib,
        "date": g.date,
        "created": g.date,
        "modified": g.modified,
        "category": g.category,
        "deviceid": g.deviceid,
        "hash_deviceid": g.deviceid,
        "model": if device { json!("Body+") } else { Value::Null },
        "modelid": if device { json!(5) } else { Value::Null },
        "comment": Value::Null,
        "measures": measures,
        // Undocumented extra key, as seen in real answers (§2): clients must ignore it.
        "apppfmid": 7,
    })
}
