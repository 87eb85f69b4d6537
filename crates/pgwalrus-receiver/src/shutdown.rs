//! Shutdown as a value: the caller keeps a [`ShutdownTrigger`] and hands the engine a
//! [`Shutdown`]. The engine never installs signal handlers; the binary turns SIGINT/SIGTERM
//! into a trigger, a daemon fires one on reload or stop. Once triggered it stays triggered.

use std::sync::Arc;

use tokio::sync::watch;

/// Fires the shutdown of every [`Shutdown`] made with it. Clones fire the same shutdown (a
/// caller that runs the engine beside another stage lets that stage stop it too).
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(Arc<watch::Sender<bool>>);

/// What an engine waits on to stop cleanly (fsync what was received, report it, CopyDone).
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl ShutdownTrigger {
    /// Asks every engine holding one of this trigger's [`Shutdown`]s to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Another [`Shutdown`] fired by this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// A trigger and the shutdown it fires.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(Arc::new(tx)), Shutdown(rx))
    }

    /// A shutdown that never fires (runs until an end position or an error).
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        // Kept alive forever: a dropped sender would read as "never" too, but explicitly.
        std::mem::forget(tx);
        Shutdown(rx)
    }

    /// Whether the shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once the shutdown is triggered; never if the trigger is dropped untriggered.
    /// Cancel-safe.
    pub async fn triggered(&mut self) {
        if self.0.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_trigger_reaches_every_subscriber_and_stays() {
        let (trigger, mut a) = Shutdown::new();
        let mut b = trigger.subscribe();
        assert!(!a.is_triggered());
        let waiting = tokio::spawn(async move { b.triggered().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        trigger.trigger();
        waiting.await.unwrap();
        a.triggered().await;
        assert!(a.is_triggered());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trigger_never_fires() {
        let (trigger, mut s) = Shutdown::new();
        drop(trigger);
        let r = tokio::time::timeout(std::time::Duration::from_secs(3600), s.triggered()).await;
        assert!(r.is_err());
    }
}
