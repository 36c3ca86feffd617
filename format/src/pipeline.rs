//! An ordered parallel map: work items are processed on a few threads and
//! consumed in their original order, with a bounded number in flight (so
//! memory stays flat however long the input is).

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex};

/// Whether a consumer wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop early.
    Stop,
}

/// Maps `inputs` through `work` on `threads` threads (inline when 1) and
/// hands the results to `consume` in input order.
pub fn ordered_map<I, O, W, C>(
    threads: usize,
    inputs: impl Iterator<Item = I>,
    work: W,
    mut consume: C,
) where
    I: Send,
    O: Send,
    W: Fn(I) -> O + Sync,
    C: FnMut(O) -> Flow,
{
    if threads <= 1 {
        for item in inputs {
            if consume(work(item)) == Flow::Stop {
                return;
            }
        }
        return;
    }
    let max_in_flight = threads * 2;
    std::thread::scope(|s| {
        let (job_tx, job_rx) = sync_channel::<(u64, I)>(max_in_flight);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = channel::<(u64, O)>();
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let work = &work;
            s.spawn(move || {
                loop {
                    // Hold the lock only while receiving.
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((n, item)) = job else { return };
                    if done_tx.send((n, work(item))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut inputs = inputs.fuse();
        let (mut sent, mut next) = (0u64, 0u64);
        let mut ready = BTreeMap::new();
        let mut exhausted = false;
        loop {
            while !exhausted && sent - next < max_in_flight as u64 {
                match inputs.next() {
                    Some(item) => {
                        if job_tx.send((sent, item)).is_err() {
                            exhausted = true;
                        }
                        sent += 1;
                    }
                    None => exhausted = true,
                }
            }
            if next == sent {
                break;
            }
            let out = loop {
                if let Some(o) = ready.remove(&next) {
                    break Some(o);
                }
                match done_rx.recv() {
                    Ok((n, o)) => {
                        ready.insert(n, o);
                    }
                    Err(_) => break None,
                }
            };
            let Some(out) = out else { break };
            next += 1;
            if consume(out) == Flow::Stop {
                break;
            }
        }
        drop(job_tx);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_stops_early() {
        for threads in [1, 2, 4] {
            let mut seen = Vec::new();
            ordered_map(
                threads,
                0..100u64,
                |x| x * 2,
                |y| {
                    seen.push(y);
                    Flow::Continue
                },
            );
            assert_eq!(seen, (0..100).map(|x| x * 2).collect::<Vec<_>>());
            let mut count = 0;
            ordered_map(
                threads,
                0..100u64,
                |x| x,
                |_| {
                    count += 1;
                    if count == 5 {
                        Flow::Stop
                    } else {
                        Flow::Continue
                    }
                },
            );
            assert_eq!(count, 5);
        }
    }
}
