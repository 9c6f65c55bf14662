//! Whether a history was safe and live (the rules are in the module docs of `simulation`).

use super::world::{rt, Ms, Sim};

/// Why the valid refresh token stopped being reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loss {
    AnswerLost,
    Crash,
    /// A pause event (the cause of the step; [`Loss::Isolated`] says whose and when).
    Pause,
    /// Every holder was paused or cut off from the store; this one held the lease, which the
    /// store had running out at this time (`None`: it held none).
    Isolated {
        host: usize,
        lease_expires: Option<Ms>,
    },
    StoreWentBack,
    /// The store went back, and the running hosts that hold it do not watch the store, are
    /// doing nothing and have not read it since: nothing tells them the store lacks it.
    Unaware,
    /// A host's own step dropped it: never unavoidable.
    HostDropped(usize),
}

/// How a history ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Clean,
    /// A reuse the model proves unavoidable, and why.
    Unavoidable(&'static str),
    /// A reuse that is neither, or a broken invariant: the class, and what happened.
    Failure(&'static str, String),
}

impl Sim {
    /// Whether host `h` could not hear from the store at `at`: paused, cut off, the store
    /// paused, or a store call of its hanging for either (or with its answer lost).
    fn isolated_at(&self, h: usize, at: Ms) -> bool {
        let host = &self.hosts[h];
        host.paused_at(at)
            || host.cut_at(at)
            || host
                .hangs
                .iter()
                .any(|&(from, until)| from <= at && at < until)
            || self
                .store
                .pauses
                .iter()
                .any(|&(from, until)| from <= at && at < until)
    }

    /// Whether the store lost the lease (went back without it) in `[from, until]`.
    fn lease_lost_between(&self, from: Ms, until: Ms) -> bool {
        self.store_faults
            .iter()
            .any(|&(at, lease)| lease && from <= at && at <= until)
    }

    /// Whether host `h` was paused at some point of `[from, until)`.
    fn paused_during(&self, h: usize, from: Ms, until: Ms) -> bool {
        self.hosts[h]
            .pauses
            .iter()
            .any(|&(start, end)| start < until.max(from + 1) && from < end)
    }

    /// Whether a reuse by flight `f` was unavoidable (the module doc's rules).
    pub(super) fn judge(&self, f: usize) -> Verdict {
        let reusing = &self.flights[f];
        let spender = self.genlogs.spent_by[reusing.token].map(|s| &self.flights[s]);
        // A pause between the lease check and the send that the lease did not outlast.
        let gap = |flight: &super::world::Flight| {
            !flight.fenced && self.paused_during(flight.host, flight.checked_at, flight.sent_at)
        };
        if gap(reusing) || spender.is_some_and(gap) {
            return Verdict::Unavoidable(
                "fencing gap: a host paused between its lease check and the send, past its lease",
            );
        }
        if spender.is_some_and(|s| {
            s.late
                && s.delivered
                && s.lease_expires
                    .is_some_and(|expires| self.hosts[s.host].paused_at(expires))
        }) {
            return Verdict::Unavoidable(
                "fencing gap: the spender was paused across its lease's expiry and took the \
                 rotated token only on resume",
            );
        }
        // As it was when the reusing request left (a paused holder may have resumed since).
        match reusing.unreachable_at_send.or(self.unreachable) {
            Some((at, loss)) if at <= reusing.sent_at => match loss {
                Loss::AnswerLost => Verdict::Unavoidable("grant lost: GenLogs' answer was lost"),
                Loss::Crash => Verdict::Unavoidable(
                    "grant lost: every host holding the valid token crashed before the store had it",
                ),
                Loss::StoreWentBack => Verdict::Unavoidable(
                    "grant lost: the store went back while no running host held the valid token",
                ),
                Loss::Unaware => Verdict::Unavoidable(
                    "grant lost: the store went back while only hosts that do not watch it held \
                     the valid token, none of which has read the store since",
                ),
                Loss::Isolated {
                    host,
                    lease_expires: Some(expires),
                } if expires <= reusing.sent_at
                    && !self.lease_lost_between(at, expires)
                    && self.isolated_at(host, expires) =>
                {
                    Verdict::Unavoidable(
                        "grant lost: the holder of the valid token was paused or cut off from the \
                         store across its lease's expiry",
                    )
                }
                // Its lease gone with the store (or none held): the fleet's last wait for it
                // (the restore grace, the in-flight wait) ended when the reusing host checked.
                Loss::Isolated {
                    host,
                    lease_expires,
                } if lease_expires.is_none_or(|expires| self.lease_lost_between(at, expires))
                    && self.isolated_at(host, reusing.checked_at) =>
                {
                    Verdict::Unavoidable(
                        "grant lost: the holder of the valid token was paused or cut off from the \
                         store, with no lease left, past the fleet's last wait for it",
                    )
                }
                Loss::Isolated { host, .. } | Loss::HostDropped(host) => Verdict::Failure(
                    "a host dropped the only copy of the valid token, or others did not wait for it",
                    format!(
                        "h{host} held {} while nowhere else had it; h{} sent {} at {:.3}s",
                        rt(self.genlogs.current),
                        reusing.host,
                        rt(reusing.token),
                        reusing.sent_at as f64 / 1000.0
                    ),
                ),
                Loss::Pause => Verdict::Failure(
                    "a loss with no holder to blame",
                    format!("h{} sent {}", reusing.host, rt(reusing.token)),
                ),
            },
            _ => {
                let what = format!(
                    "h{} sent {} at {:.3}s while {} was reachable",
                    reusing.host,
                    rt(reusing.token),
                    reusing.sent_at as f64 / 1000.0,
                    rt(self.genlogs.current)
                );
                // The valid token's holders came back (reachable, or a caller woke an unaware
                // one) only after the reusing host took the lease, or too shortly before its
                // final check to have read the store: it could write nothing back in time, and
                // GenLogs takes no fencing token.
                let came_back_too_late = |&(from, until, loss): &(Ms, Ms, Loss)| {
                    let granted = reusing.lease_granted_at.unwrap_or(reusing.checked_at);
                    match loss {
                        // Its lease ran out while it was isolated, and another host took it.
                        Loss::Isolated {
                            host,
                            lease_expires: Some(expires),
                        } if !self.lease_lost_between(from, expires) => {
                            from <= expires
                                && expires <= granted
                                && granted < until
                                && self.isolated_at(host, expires)
                        }
                        // No lease left (lost with the store): the restore grace was its
                        // chance, and it had less than a watch's interval and a call of it.
                        Loss::Isolated { .. } => {
                            from <= reusing.checked_at
                                && (granted < until || reusing.checked_at < until + WATCH_REACH)
                        }
                        Loss::Unaware => from <= granted && granted < until,
                        _ => false,
                    }
                };
                if self.isolations.iter().any(came_back_too_late) {
                    return Verdict::Unavoidable(
                        "grant lost: the holders of the valid token came back (from a pause, a \
                         cut, or unaware) only after another host took the lease, or too late \
                         to write it back",
                    );
                }
                let Some(spender) = spender else {
                    return Verdict::Failure("reuse of a token nobody spent", what);
                };
                let (first, second) = if spender.sent_at <= reusing.sent_at {
                    (spender, reusing)
                } else {
                    (reusing, spender)
                };
                let lease_lost_in_flight = self.store_faults.iter().any(|&(at, lease)| {
                    let processed = first.process_at.unwrap_or(first.deadline);
                    lease && at >= first.sent_at && at <= processed && at <= second.sent_at
                });
                if lease_lost_in_flight {
                    if second.from_marked {
                        Verdict::Failure(
                            "the store lost a lease in flight; the mark survived but its wait was cut short",
                            what,
                        )
                    } else if second.from_written_back {
                        Verdict::Failure(
                            "the store lost a lease in flight; the restore grace ended before the request could",
                            what,
                        )
                    } else if second.mark_known_elsewhere {
                        Verdict::Failure(
                            "the store lost a lease in flight; a running host knew the mark but had not written it back",
                            what,
                        )
                    } else {
                        Verdict::Failure(
                            "the store lost the lease and the mark of a request in flight; the \
                             new instance's restore grace ended before the request could",
                            what,
                        )
                    }
                } else if self
                    .store_faults
                    .iter()
                    .any(|&(at, _)| at >= spender.process_at.unwrap_or(spender.sent_at))
                {
                    Verdict::Failure(
                        "rollback race: a host sent the restored token before a host holding the valid one wrote it back",
                        what,
                    )
                } else {
                    Verdict::Failure("reuse with no fault to blame", what)
                }
            }
        }
    }

    /// Whether the valid refresh token can still be read by the fleet, and if it just stopped
    /// being, why. A holder that is paused or cut off from the store cannot hand it on.
    pub(super) fn track_reachability(&mut self) {
        if self.genlogs.revoked {
            return;
        }
        let current = self.genlogs.current;
        let token = rt(current);
        let now = self.now;
        let in_store = self
            .store
            .doc
            .as_ref()
            .is_some_and(|d| d.refresh_token.expose_secret() == token);
        let went_back = self.store_faults.last().map(|&(at, _)| at);
        let mut isolated_holders = Vec::new();
        let mut unaware_holders = 0;
        let mut reachable = in_store;
        for h in 0..self.hosts.len() {
            let host = &self.hosts[h];
            let answer_on_its_way = self.flights.iter().any(|flight| {
                flight.host == h
                    && !flight.delivered
                    && matches!(flight.answer, Some(super::world::Answer::Rotated(n)) if n == current)
                    && flight.incarnation == host.incarnation
            });
            if !host.alive || !(host.holds(&token) || answer_on_its_way) {
                continue;
            }
            if self.isolated_at(h, now) {
                isolated_holders.push(h);
            } else if !answer_on_its_way && went_back.is_some_and(|at| host.unaware_of(at)) {
                unaware_holders += 1;
            } else {
                reachable = true;
            }
        }
        match (reachable, self.unreachable) {
            (true, _) => {
                if let Some((from, loss @ (Loss::Isolated { .. } | Loss::Unaware))) =
                    self.unreachable.take()
                {
                    self.isolations.push((from, now, loss));
                }
            }
            // Every isolated holder has gone since (crashed): the loss is that, from then on.
            (false, Some((at, Loss::Isolated { .. }))) if isolated_holders.is_empty() => {
                if unaware_holders > 0 {
                    note!(self, "{token} is now lost (only unaware holders)");
                    self.unreachable = Some((at, Loss::Unaware));
                } else if let Some(loss @ (Loss::Crash | Loss::HostDropped(_))) = self.cause {
                    note!(self, "{token} is now lost ({loss:?})");
                    self.unreachable = Some((at, loss));
                }
            }
            // The recorded holder has gone (crashed); others are still isolated: the loss is
            // theirs now.
            (false, Some((at, Loss::Isolated { host, .. })))
                if !isolated_holders.contains(&host) =>
            {
                let loss = self.isolated_loss(&isolated_holders);
                note!(
                    self,
                    "{token} is now held only by isolated hosts ({loss:?})"
                );
                self.unreachable = Some((at, loss));
            }
            (false, Some(_)) => {}
            (false, None) => {
                let loss = match self.cause.unwrap_or(Loss::AnswerLost) {
                    _ if isolated_holders.is_empty() && unaware_holders > 0 => Loss::Unaware,
                    Loss::HostDropped(h) if isolated_holders.is_empty() => Loss::HostDropped(h),
                    _ if !isolated_holders.is_empty() => self.isolated_loss(&isolated_holders),
                    loss => loss,
                };
                note!(self, "{token} is now reachable nowhere ({loss:?})");
                self.unreachable = Some((now, loss));
            }
        }
    }

    /// The loss when only these (isolated) hosts hold the valid token: the holder whose lease
    /// the store still has (the one that decides when others may act), else the first.
    fn isolated_loss(&self, isolated_holders: &[usize]) -> Loss {
        let with_lease = isolated_holders.iter().find_map(|&h| {
            let owner = self.hosts[h].owner()?;
            match self.store.lease {
                Some((o, expires)) if o == owner => Some((h, expires)),
                _ => None,
            }
        });
        match with_lease {
            Some((host, expires)) => Loss::Isolated {
                host,
                lease_expires: Some(expires),
            },
            None => Loss::Isolated {
                host: isolated_holders[0],
                lease_expires: None,
            },
        }
    }

    /// Once the faults are over: whether every live host has served a valid access token since
    /// (the fleet converged, noted then) and a minute has passed since, in which the
    /// rewrites are counted. The history can end there.
    pub(super) fn live_enough(&mut self) -> bool {
        if self.now < super::FAULTS_END {
            return false;
        }
        if self.converged_at.is_none() {
            let served = self.hosts.iter().all(|host| {
                host.alive && host.last_served.is_some_and(|at| at >= super::FAULTS_END)
            });
            if served {
                note!(self, "every host has served since the faults ended");
                self.converged_at = Some(self.now);
            }
        }
        self.converged_at
            .is_some_and(|at| self.now >= at + CONVERGED_WATCH)
    }

    /// After the faults: every live host served within the bound (unless the grant is lost),
    /// and the fleet stopped rewriting the store once it converged.
    pub(super) fn check_liveness(&mut self) {
        let Some(converged) = self.converged_at else {
            if self.unreachable.is_some() {
                return; // the valid token is nowhere the fleet can read: nothing could serve
            }
            let what = self
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, host)| {
                    host.alive && host.last_served.is_none_or(|at| at < super::FAULTS_END)
                })
                .map(|(h, host)| {
                    format!(
                        "h{h} (last served at {:?} ms, holds {})",
                        host.last_served,
                        super::world::describe(host.state.tokens.as_ref())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            self.fail(
                "a live host served nothing within the bound after the faults",
                what,
            );
            return;
        };
        // Each request sent accounts for two writes (its mark, then the rotation or the mark
        // taken back); more than that, beyond one re-save per host, is a fleet that keeps
        // writing for its own sake (a write-back war).
        let writes = self.writes.iter().filter(|w| w.at >= converged).count();
        let sends = self
            .flights
            .iter()
            .filter(|f| f.sent_at >= converged)
            .count();
        let rewrites = writes.saturating_sub(2 * sends);
        if rewrites > self.hosts.len() {
            self.fail(
                "the fleet keeps writing the store after converging",
                format!("{writes} writes for {sends} requests in the minute after it converged"),
            );
        }
    }
}

/// How long a host that can hear from the store again may take to read it: a store watch's
/// interval and a call (ms).
const WATCH_REACH: Ms = crate::manager::STORE_WATCH_INTERVAL.as_millis() as Ms + 1_000;

/// How long a converged fleet is watched for rewrites of the store (ms).
const CONVERGED_WATCH: Ms = 60_000;
