//! Users and groups from `/etc/passwd` and `/etc/group`. `/etc/shadow` and `/etc/gshadow` are
//! never opened, and the password field of passwd is never kept: a legacy hash there would
//! otherwise end up in a snapshot file and in task results.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserObservation {
    pub name: String,
    pub uid: String,
    pub gid: String,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupObservation {
    pub name: String,
    pub gid: String,
    /// Supplementary members in file order.
    pub members: Vec<String>,
}

pub fn read_users(path: &Path) -> std::io::Result<BTreeMap<String, UserObservation>> {
    Ok(parse_passwd(&String::from_utf8_lossy(&std::fs::read(
        path,
    )?)))
}

pub fn read_groups(path: &Path) -> std::io::Result<BTreeMap<String, GroupObservation>> {
    Ok(parse_group(&String::from_utf8_lossy(&std::fs::read(path)?)))
}

/// `name:password:uid:gid:gecos:home:shell`; the password field is skipped. Comment lines and
/// NIS `+`/`-` lines are not accounts.
pub fn parse_passwd(text: &str) -> BTreeMap<String, UserObservation> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with(['#', '+', '-']))
        .filter_map(|line| {
            let fields: Vec<&str> = line.splitn(7, ':').collect();
            let [name, _password, uid, gid, gecos, home, shell] = fields[..] else {
                return None;
            };
            Some((
                name.to_string(),
                UserObservation {
                    name: name.to_string(),
                    uid: uid.to_string(),
                    gid: gid.to_string(),
                    gecos: gecos.to_string(),
                    home: home.to_string(),
                    shell: shell.to_string(),
                },
            ))
        })
        .collect()
}

/// `name:password:gid:member,member`; the password field is skipped.
pub fn parse_group(text: &str) -> BTreeMap<String, GroupObservation> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with(['#', '+', '-']))
        .filter_map(|line| {
            let fields: Vec<&str> = line.splitn(4, ':').collect();
            let [name, _password, gid, members] = fields[..] else {
                return None;
            };
            Some((
                name.to_string(),
                GroupObservation {
                    name: name.to_string(),
                    gid: gid.to_string(),
                    members: members
                        .split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect(),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_entries_are_read_without_their_password_field() {
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n\
             legacy:$6$salt$hash:1001:1001:Old Style,,,:/home/legacy:/bin/sh\n\
             # comment\n+nisuser::::::\nbroken:line\n",
        );
        assert_eq!(users.len(), 2);
        assert_eq!(users["legacy"].uid, "1001");
        assert_eq!(users["legacy"].gecos, "Old Style,,,");
        let serialized = serde_json::to_string(&users).unwrap();
        assert!(!serialized.contains("$6$"), "{serialized}");
    }

    #[test]
    fn group_members_are_split() {
        let groups = parse_group("sudo:x:27:alice, bob\nstaff:x:50:\n");
        assert_eq!(groups["sudo"].members, vec!["alice", "bob"]);
        assert!(groups["staff"].members.is_empty());
    }
}
