//! The application the demo backs up: a background task that keeps the
//! shop busy with a few writes per second (new orders, status changes,
//! loyalty points, stock, cancellations) until the demo ends.
//!
//! It can be paused: [`Writer::pause`] returns only once no write is in
//! flight, which is how the demo records the source's exact state at a
//! known instant without racing the writes (see `super::verify`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{doc, Document};
use mongodb::{Client, Collection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::dataset::{self, Rng, DB};

/// Time between two writes: a few per second, enough for every
/// incremental to carry something.
const EVERY: Duration = Duration::from_millis(300);

enum Command {
    /// Stop writing; the sender hears back once no write is in flight.
    Pause(oneshot::Sender<()>),
    Resume,
}

/// The running writer.
pub struct Writer {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    writes: Arc<AtomicU64>,
}

impl Writer {
    /// Starts writing to the shop through `client`; `orders` are the
    /// order ids it may update or cancel.
    pub fn start(client: Client, orders: Vec<ObjectId>, rng: Rng) -> Writer {
        let (tx, rx) = mpsc::channel(4);
        let writes = Arc::new(AtomicU64::new(0));
        let state = State {
            client,
            orders,
            rng,
            writes: writes.clone(),
        };
        Writer {
            commands: tx,
            task: tokio::spawn(state.run(rx)),
            writes,
        }
    }

    /// Writes that succeeded so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Returns once the writer has stopped between two writes.
    pub async fn pause(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Pause(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    pub async fn resume(&self) {
        let _ = self.commands.send(Command::Resume).await;
    }

    /// Stops it for good (after the write in flight, if any).
    pub async fn stop(self) {
        drop(self.commands);
        let _ = self.task.await;
    }
}

struct State {
    client: Client,
    orders: Vec<ObjectId>,
    rng: Rng,
    writes: Arc<AtomicU64>,
}

impl State {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Pause(ack)) => {
                        let _ = ack.send(());
                        // Paused until resumed; a closed channel ends it.
                        loop {
                            match commands.recv().await {
                                Some(Command::Resume) => break,
                                Some(Command::Pause(ack)) => { let _ = ack.send(()); }
                                None => return,
                            }
                        }
                    }
                    Some(Command::Resume) => {}
                    None => return,
                },
                _ = tokio::time::sleep(EVERY) => {
                    match self.write_one().await {
                        Ok(()) => { self.writes.fetch_add(1, Ordering::Relaxed); }
                        // The demo goes on; the next write will likely work.
                        Err(e) => tracing::warn!("The demo's writer could not write to the shop: {e}."),
                    }
                }
            }
        }
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.client.database(DB).collection(name)
    }

    fn some_order(&mut self) -> Option<ObjectId> {
        (!self.orders.is_empty()).then(|| self.orders[self.rng.below(self.orders.len())])
    }

    /// One write, chosen at random the way a shop's traffic mixes them.
    async fn write_one(&mut self) -> Result<(), mongodb::error::Error> {
        let now = bson::DateTime::now();
        let customer = 1 + self.rng.below(dataset::CUSTOMERS) as i64;
        match self.rng.below(20) {
            // A new order.
            0..=6 => {
                let order = dataset::order(&mut self.rng, customer, now, "placed");
                if let Ok(id) = order.get_object_id("_id") {
                    self.orders.push(id);
                }
                self.coll("orders").insert_one(order).await?;
            }
            // An order moves on: status set, the change appended to its history.
            7..=12 => {
                let Some(id) = self.some_order() else {
                    return Ok(());
                };
                let status = *self.rng.pick(&dataset::STATUSES[1..]);
                self.coll("orders")
                    .update_one(
                        doc! { "_id": id },
                        doc! {
                            "$set": { "status": status, "updated": now },
                            "$push": { "history": { "status": status, "at": now } },
                        },
                    )
                    .await?;
            }
            // Loyalty points and a changed address for a customer.
            13..=15 => {
                let points = 10 + self.rng.below(200) as i32;
                self.coll("customers")
                    .update_one(
                        doc! { "_id": customer },
                        doc! {
                            "$inc": { "loyalty.points": points },
                            "$set": { "address.street": format!("{} High Street", 1 + self.rng.below(300)), "last_seen": now },
                        },
                    )
                    .await?;
            }
            // Stock sold and a new price.
            16..=17 => {
                let p = self.rng.below(dataset::PRODUCTS);
                let cents = dataset::price_cents(p) + self.rng.below(500) as u64;
                self.coll("products")
                    .update_one(
                        doc! { "_id": dataset::sku(p) },
                        doc! { "$inc": { "stock": -1 }, "$set": { "price": dataset::money(cents) } },
                    )
                    .await?;
            }
            // A cancelled order is deleted.
            _ => {
                let Some(id) = self.some_order() else {
                    return Ok(());
                };
                self.orders.retain(|o| *o != id);
                self.coll("orders").delete_one(doc! { "_id": id }).await?;
            }
        }
        Ok(())
    }
}
