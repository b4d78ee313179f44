//! The demo's sample data: a small online shop (`shop`: customers, products,
//! orders) with the shapes real applications store — nested documents,
//! arrays, dates, decimals — and the indexes they query by, so a backup and
//! a restore have something realistic to carry.
//!
//! The data is generated from a fixed seed, so every run shows the same
//! shop; only the `_id`s of orders (ObjectIds) and the dates differ.

use bson::oid::ObjectId;
use bson::{doc, Bson, Decimal128, Document};
use mongodb::options::IndexOptions;
use mongodb::{Client, IndexModel};

/// The database the demo backs up and restores.
pub const DB: &str = "shop";
pub const CUSTOMERS: usize = 1000;
pub const PRODUCTS: usize = 200;
pub const ORDERS: usize = 3000;

const FIRST: [&str; 12] = [
    "Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Alan", "Radia",
    "Edsger", "Hedy",
];
const LAST: [&str; 10] = [
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen",
    "Turing", "Perlman",
];
const CITIES: [(&str, &str); 8] = [
    ("Berlin", "DE"),
    ("Lyon", "FR"),
    ("Porto", "PT"),
    ("Leeds", "GB"),
    ("Austin", "US"),
    ("Osaka", "JP"),
    ("Turin", "IT"),
    ("Gdansk", "PL"),
];
const CATEGORIES: [&str; 6] = ["books", "garden", "kitchen", "toys", "audio", "outdoor"];
const NOUNS: [&str; 10] = [
    "kettle", "lamp", "tent", "speaker", "novel", "trowel", "puzzle", "mug", "backpack", "radio",
];
const ADJECTIVES: [&str; 10] = [
    "blue", "compact", "deluxe", "classic", "folding", "wooden", "quiet", "solar", "tiny", "sturdy",
];
pub const STATUSES: [&str; 4] = ["placed", "paid", "shipped", "delivered"];

/// A small deterministic generator (SplitMix64): the demo needs variety,
/// not cryptographic quality, and no extra dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// An amount of money in cents as a Decimal128 with two decimals, the way
/// shops store prices (never as a float).
pub fn money(cents: u64) -> Bson {
    let text = format!("{}.{:02}", cents / 100, cents % 100);
    match text.parse::<Decimal128>() {
        Ok(d) => Bson::Decimal128(d),
        // Cannot happen for digits and one dot; a string keeps the value.
        Err(_) => Bson::String(text),
    }
}

/// A date `days` days and `secs` seconds before now.
pub fn days_ago(days: u64, secs: u64) -> bson::DateTime {
    let ms = (days * 86_400 + secs) as i64 * 1000;
    bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - ms)
}

pub fn sku(i: usize) -> String {
    format!("SKU-{i:05}")
}

/// Product prices in cents, by index, so orders can price their lines.
pub fn price_cents(i: usize) -> u64 {
    // Spread between 3.50 and about 250.00, deterministic per product.
    350 + (i as u64 * 7919) % 24_700
}

fn customer(rng: &mut Rng, i: usize) -> Document {
    let first = rng.pick(&FIRST);
    let last = rng.pick(&LAST);
    let (city, country) = *rng.pick(&CITIES);
    // One customer in seven is a regular with the gold tier.
    let vip = i.is_multiple_of(7);
    let mut tags = vec![Bson::String(if vip { "vip" } else { "retail" }.into())];
    if rng.below(3) == 0 {
        tags.push(Bson::String("newsletter".into()));
    }
    doc! {
        "_id": i as i64 + 1,
        "name": format!("{first} {last}"),
        "email": format!("{}.{}.{}@example.com", first.to_lowercase(), last.to_lowercase(), i + 1),
        "address": {
            "street": format!("{} Main Street", 1 + rng.below(200)),
            "city": city,
            "zip": format!("{:05}", rng.below(100_000)),
            "country": country,
        },
        "tags": tags,
        "loyalty": { "points": rng.below(5000) as i32, "tier": if vip { "gold" } else { "basic" } },
        "created": days_ago(30 + rng.below(1000) as u64, rng.below(86_400) as u64),
        "marketing_opt_in": rng.below(2) == 0,
    }
}

fn product(rng: &mut Rng, i: usize) -> Document {
    doc! {
        "_id": sku(i),
        "name": format!("{} {} #{}", rng.pick(&ADJECTIVES), rng.pick(&NOUNS), i),
        "category": *rng.pick(&CATEGORIES),
        "price": money(price_cents(i)),
        "stock": 20 + rng.below(500) as i32,
        "dimensions_cm": [10 + rng.below(90) as i32, 5 + rng.below(40) as i32, 1 + rng.below(30) as i32],
        "rating": { "average": 1.0 + (rng.below(400) as f64) / 100.0, "count": rng.below(900) as i32 },
        "added": days_ago(60 + rng.below(700) as u64, 0),
    }
}

/// One order of `customer` for 1-4 random products, `placed` at `at`.
pub fn order(rng: &mut Rng, customer: i64, at: bson::DateTime, status: &str) -> Document {
    let lines = 1 + rng.below(4);
    let mut items = Vec::with_capacity(lines);
    let mut total = 0;
    for _ in 0..lines {
        let p = rng.below(PRODUCTS);
        let qty = 1 + rng.below(3) as u64;
        total += price_cents(p) * qty;
        items.push(Bson::Document(doc! {
            "sku": sku(p),
            "qty": qty as i32,
            "unit_price": money(price_cents(p)),
        }));
    }
    let (city, country) = *rng.pick(&CITIES);
    doc! {
        "_id": ObjectId::new(),
        "customer_id": customer,
        "placed": at,
        "status": status,
        "items": items,
        "total": money(total),
        "shipping": {
            "method": if rng.below(4) == 0 { "express" } else { "standard" },
            "address": { "city": city, "country": country },
        },
        "history": [ { "status": "placed", "at": at } ],
    }
}

/// Creates the shop with its indexes and about four thousand documents.
/// Returns the `_id`s of the orders (the writer updates and deletes them).
pub async fn seed(client: &Client, rng: &mut Rng) -> Result<Vec<ObjectId>, mongodb::error::Error> {
    let db = client.database(DB);
    let customers: Vec<Document> = (0..CUSTOMERS).map(|i| customer(rng, i)).collect();
    db.collection::<Document>("customers")
        .insert_many(customers)
        .await?;
    let products: Vec<Document> = (0..PRODUCTS).map(|i| product(rng, i)).collect();
    db.collection::<Document>("products")
        .insert_many(products)
        .await?;
    let mut orders = Vec::with_capacity(ORDERS);
    for _ in 0..ORDERS {
        let customer = 1 + rng.below(CUSTOMERS) as i64;
        let at = days_ago(rng.below(365) as u64, rng.below(86_400) as u64);
        let status = *rng.pick(&STATUSES);
        orders.push(order(rng, customer, at, status));
    }
    let ids: Vec<ObjectId> = orders
        .iter()
        .filter_map(|o| o.get_object_id("_id").ok())
        .collect();
    db.collection::<Document>("orders")
        .insert_many(orders)
        .await?;
    // The indexes an application would query by; they must come back with
    // a restore too.
    let unique = IndexOptions::builder().unique(true).build();
    db.collection::<Document>("customers")
        .create_index(
            IndexModel::builder()
                .keys(doc! { "email": 1 })
                .options(unique)
                .build(),
        )
        .await?;
    db.collection::<Document>("products")
        .create_index(
            IndexModel::builder()
                .keys(doc! { "category": 1, "price": -1 })
                .build(),
        )
        .await?;
    db.collection::<Document>("orders")
        .create_index(
            IndexModel::builder()
                .keys(doc! { "customer_id": 1, "placed": -1 })
                .build(),
        )
        .await?;
    db.collection::<Document>("orders")
        .create_index(IndexModel::builder().keys(doc! { "status": 1 }).build())
        .await?;
    Ok(ids)
}
