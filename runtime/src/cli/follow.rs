//! Following a run the owner drives: its flushed events feed the same progress board as
//! a run in this process, the first Ctrl-C asks the owner to cancel the run, a second
//! asks it to stop the run's cleanup too, a third stops following. If the owner goes away mid-run, the command elects again — perhaps
//! becoming the owner, which resumes the run — and carries on from the last event seen.

use super::out::errln;
use std::collections::HashMap;

use super::progress::Progress;
use crate::client::{ClientError, Session};
use crate::model::{Event, RunId, RunView};
use crate::scheduler::Observer;

/// How following a run ended.
pub enum Followed {
    /// The run finished: its final view.
    Finished(Box<RunView>),
    /// Ctrl-C three times: the command stops (the run goes on, or stops, without it).
    Interrupted,
}

/// Feeds a progress board from a stream: history first (as `attached`), then events.
struct Feed<'a> {
    progress: Option<&'a Progress>,
    history: HashMap<RunId, Vec<Event>>,
    /// The next position expected per run (what was seen is not fed twice).
    next: HashMap<RunId, u64>,
}

impl Feed<'_> {
    fn item(&mut self, item: crate::service::StreamItem) {
        let next = self.next.entry(item.run_id).or_insert(0);
        if item.seq < *next {
            return;
        }
        *next = item.seq + 1;
        let Some(progress) = self.progress else { return };
        if item.history {
            self.history.entry(item.run_id).or_default().push(item.event);
            return;
        }
        if let Some(history) = self.history.remove(&item.run_id) {
            progress.attached(item.run_id, &history);
        }
        progress.event(item.run_id, &item.event);
    }

    fn flush_history(&mut self) {
        if let Some(progress) = self.progress {
            for (run, history) in self.history.drain() {
                progress.attached(run, &history);
            }
        }
    }
}

/// Follow `run` from position `from` of its log until it finishes.
pub async fn follow(
    session: &mut Session,
    run: RunId,
    from: u64,
    progress: Option<&Progress>,
) -> anyhow::Result<Followed> {
    let mut feed = Feed { progress, history: HashMap::new(), next: HashMap::new() };
    let mut interrupts = 0;
    let mut from = from;
    loop {
        let stream = session.client().events(run, from).await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(ClientError::Disconnected(_)) => {
                session.reconnect().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Ok(Some(item)) => feed.item(item),
                    Ok(None) => {
                        feed.flush_history();
                        return Ok(Followed::Finished(Box::new(final_view(session, run).await?)));
                    }
                    Err(ClientError::Disconnected(why)) => {
                        tracing::info!("following run {run}: {why}; reconnecting");
                        if session.reconnect().await? {
                            errln!("the sluice process running run {run} stopped; this one carries it on");
                        }
                        from = feed.next.get(&run).copied().unwrap_or(from);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                },
                signal = tokio::signal::ctrl_c() => {
                    if signal.is_err() {
                        continue;
                    }
                    interrupts += 1;
                    match interrupts {
                        1 => errln!("canceling the run (Ctrl-C); cleanup tasks still run: Ctrl-C again stops them too…"),
                        2 => errln!("stopping the run's cleanup too (Ctrl-C again; a third Ctrl-C stops following)…"),
                        _ => return Ok(Followed::Interrupted),
                    }
                    if let Err(e) = session.client().cancel(run).await {
                        errln!("could not cancel run {run}: {e}");
                    }
                }
            }
        }
    }
}

/// The view of a run whose stream ended. The owner may stop between the stream's end
/// and this request (its last run ended, no client was connected for that instant): then
/// this process elects again — the old owner may still be closing — and asks once more.
async fn final_view(session: &mut Session, run: RunId) -> anyhow::Result<RunView> {
    let mut tries = 0;
    loop {
        match session.client().view(run).await {
            Err(ClientError::Disconnected(why)) if tries < OWNER_GONE_RETRIES => {
                tracing::info!("reading run {run}: {why}; reconnecting");
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10 * tries)).await;
                session.reconnect().await?;
            }
            other => return Ok(other?),
        }
    }
}

/// How many times a client elects again when the owner it asked went away in between: an
/// owner that is closing can still be found once or twice before it is gone.
const OWNER_GONE_RETRIES: u64 = 5;
