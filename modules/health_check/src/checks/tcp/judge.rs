//! The TCP rule: one address answered.

use super::params::HostPort;
use super::TcpObservation;
use crate::verdict::Verdict;

/// Words what connecting found.
pub fn judge(address: &HostPort, seen: &TcpObservation) -> Verdict {
    match seen {
        TcpObservation::Unresolved(reason) => Verdict::fail(
            "unresolved",
            format!("cannot resolve {}: {reason}", address.host),
        ),
        TcpObservation::Connected { peer, connect_ms } => Verdict::pass(
            format!("connected to {peer} in {connect_ms} ms"),
            format!("{address} reachable"),
        )
        .detail("peer", peer.to_string())
        .detail("connect_ms", *connect_ms),
        TcpObservation::Unreachable(failures) => {
            let reasons = match failures.as_slice() {
                [] => {
                    return Verdict::fail(
                        "unresolved",
                        format!("{} resolved to no address", address.host),
                    )
                }
                // One address: the message already names it.
                [(_, reason)] => reason.clone(),
                many => many
                    .iter()
                    .map(|(candidate, reason)| format!("{candidate}: {reason}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            Verdict::fail(
                "unreachable",
                format!("cannot connect to {address}: {reasons}"),
            )
        }
    }
}
