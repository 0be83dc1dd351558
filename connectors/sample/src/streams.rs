//! The three streams of the shop: their Arrow schemas and how a generation's rows become batches.

use crate::generator::{RowVersion, Shop, Table, pick};
use inlet_sdk::prelude::*;
use serde::Serialize;
use std::sync::Arc;

const FIRST_NAMES: &[&str] = &[
    "Aiko", "Haruto", "Mei", "Sota", "Yui", "Ren", "Hana", "Kaito", "Émile", "Zoë",
];
const LAST_NAMES: &[&str] = &[
    "Sato",
    "Suzuki",
    "Takahashi",
    "Tanaka",
    "Watanabe",
    "Ito",
    "Yamamoto",
    "Nakamura",
];
const CITIES: &[&str] = &[
    "Tokyo", "Osaka", "Nagoya", "Sapporo", "Fukuoka", "Kobe", "Kyoto", "Sendai",
];
const DOCTORS: &[&str] = &[
    "Dr. Mori",
    "Dr. Kobayashi",
    "Dr. Kato",
    "Dr. Yoshida",
    "Dr. Yamada",
];
const SPECIALTIES: &[&str] = &["general", "dermatology", "allergy", "sleep", "nutrition"];
const CONSULTATION_STATUS: &[&str] = &["scheduled", "completed", "prescribed", "closed"];
const PRODUCTS: &[(&str, i64)] = &[
    ("loratadine 10mg x30", 1_280),
    ("melatonin 3mg x60", 1_950),
    ("ibuprofen 200mg x24", 880),
    ("vitamin d3 x90", 1_500),
    ("hydrocortisone cream", 1_120),
];
const ORDER_STATUS: &[&str] = &["placed", "paid", "shipped", "delivered"];

/// Which table a stream reads.
#[derive(Clone, Copy)]
enum Kind {
    Patients,
    Consultations,
    Orders,
}

/// A stream of the sample connector.
pub struct SampleStream {
    pub name: &'static str,
    kind: Kind,
}

pub fn all() -> &'static [SampleStream] {
    &[
        SampleStream {
            name: "patients",
            kind: Kind::Patients,
        },
        SampleStream {
            name: "consultations",
            kind: Kind::Consultations,
        },
        SampleStream {
            name: "orders",
            kind: Kind::Orders,
        },
    ]
}

impl SampleStream {
    pub fn schema(&self) -> SchemaRef {
        Arc::new(match self.kind {
            Kind::Patients => patients_schema(),
            Kind::Consultations => consultations_schema(),
            Kind::Orders => orders_schema(),
        })
    }

    /// Emits the rows of this generation newer than `cursor` (all rows without one), in batches.
    /// Returns the newest `updated_at` emitted.
    pub fn emit(
        &self,
        shop: &Shop,
        cursor: Option<i64>,
        batch_rows: usize,
        out: &mut Output,
    ) -> Result<Option<i64>, Error> {
        let batches = Batches {
            name: self.name,
            schema: self.schema(),
            cursor,
            batch_rows,
        };
        match self.kind {
            Kind::Patients => batches.emit(shop, &shop.patients, out, patient),
            Kind::Consultations => batches.emit(shop, &shop.consultations, out, consultation),
            Kind::Orders => batches.emit(shop, &shop.orders, out, order),
        }
    }
}

/// Turns the rows of one table into batches of typed rows.
struct Batches {
    name: &'static str,
    schema: SchemaRef,
    cursor: Option<i64>,
    batch_rows: usize,
}

impl Batches {
    fn emit<'s, T: Serialize>(
        &self,
        shop: &'s Shop,
        table: &Table,
        out: &mut Output,
        make: fn(&'s Shop, RowVersion) -> T,
    ) -> Result<Option<i64>, Error> {
        let mut encoder = RowEncoder::new(self.schema.clone())?;
        let mut pending = Vec::with_capacity(self.batch_rows);
        let mut newest = None;
        let total = table.count();
        for id in 1..=total {
            let row = table.row(id);
            if self.cursor.is_some_and(|c| row.updated_at() <= c) {
                continue;
            }
            newest = newest.max(Some(row.updated_at()));
            pending.push(make(shop, row));
            if pending.len() == self.batch_rows {
                out.emit(self.name, &encoder.encode(&pending)?)?;
                pending.clear();
                out.progress(self.name, Some(total));
            }
        }
        if !pending.is_empty() {
            out.emit(self.name, &encoder.encode(&pending)?)?;
        }
        out.progress(self.name, Some(total));
        Ok(newest)
    }
}

fn choose(shop: &Shop, salt: u64, id: u64, from: &[&'static str]) -> &'static str {
    from[(pick(shop.seed, salt, id) % from.len() as u64) as usize]
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn patients_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, false),
        Field::new("date_of_birth", DataType::Date32, true),
        Field::new("city", DataType::Utf8, false),
        Field::new("created_at", timestamp(), false),
        Field::new("updated_at", timestamp(), false),
    ])
}

#[derive(Serialize)]
struct Patient<'a> {
    id: u64,
    name: String,
    email: String,
    date_of_birth: Option<i64>,
    city: &'a str,
    created_at: i64,
    updated_at: i64,
}

fn patient(shop: &Shop, row: RowVersion) -> Patient<'static> {
    let first = choose(shop, 10, row.id, FIRST_NAMES);
    let last = choose(shop, 11, row.id, LAST_NAMES);
    let days_since_1950 = (pick(shop.seed, 12, row.id) % 20_000) as i64;
    Patient {
        id: row.id,
        name: format!("{first} {last}"),
        // A patient's updates change their email and city.
        email: format!(
            "{}.{}{}@example.jp",
            first.to_lowercase(),
            row.id,
            if row.version > 0 {
                format!("+v{}", row.version)
            } else {
                String::new()
            }
        ),
        date_of_birth: (!row.id.is_multiple_of(17)).then_some(-7_305 + days_since_1950),
        city: choose(shop, 13 + u64::from(row.version), row.id, CITIES),
        created_at: row.created_at(),
        updated_at: row.updated_at(),
    }
}

fn consultations_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("patient_id", DataType::Int64, false),
        Field::new("doctor", DataType::Utf8, false),
        Field::new("specialty", DataType::Utf8, false),
        Field::new("fee", DataType::Decimal128(8, 2), false),
        Field::new("status", DataType::Utf8, false),
        Field::new("notes", DataType::Utf8, true),
        Field::new("consulted_at", timestamp(), false),
        Field::new("updated_at", timestamp(), false),
    ])
}

#[derive(Serialize)]
struct Consultation<'a> {
    id: u64,
    patient_id: u64,
    doctor: &'a str,
    specialty: &'a str,
    fee: String,
    status: &'a str,
    notes: Option<String>,
    consulted_at: i64,
    updated_at: i64,
}

fn consultation(shop: &Shop, row: RowVersion) -> Consultation<'static> {
    let patients_then = shop.patients.count_at(row.created_generation);
    let status: &'static str =
        CONSULTATION_STATUS[(row.version as usize).min(CONSULTATION_STATUS.len() - 1)];
    Consultation {
        id: row.id,
        patient_id: 1 + pick(shop.seed, 20, row.id) % patients_then,
        doctor: choose(shop, 21, row.id, DOCTORS),
        specialty: choose(shop, 22, row.id, SPECIALTIES),
        fee: money(2_000 + (pick(shop.seed, 23, row.id) % 40) as i64 * 50),
        status,
        notes: (row.version > 0).then(|| format!("follow-up #{} — 経過良好", row.version)),
        consulted_at: row.created_at(),
        updated_at: row.updated_at(),
    }
}

fn orders_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("patient_id", DataType::Int64, false),
        Field::new("consultation_id", DataType::Int64, true),
        Field::new("product", DataType::Utf8, false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("unit_price", DataType::Decimal128(10, 2), false),
        Field::new("total", DataType::Decimal128(12, 2), false),
        Field::new("status", DataType::Utf8, false),
        Field::new("ordered_at", timestamp(), false),
        Field::new("updated_at", timestamp(), false),
    ])
}

#[derive(Serialize)]
struct Order<'a> {
    id: u64,
    patient_id: u64,
    consultation_id: Option<u64>,
    product: &'a str,
    quantity: i32,
    unit_price: String,
    total: String,
    status: &'a str,
    ordered_at: i64,
    updated_at: i64,
}

fn order(shop: &Shop, row: RowVersion) -> Order<'static> {
    let (product, price) = PRODUCTS[(pick(shop.seed, 30, row.id) % PRODUCTS.len() as u64) as usize];
    let quantity = 1 + (pick(shop.seed, 31, row.id) % 4) as i32;
    let consultations_then = shop.consultations.count_at(row.created_generation);
    Order {
        id: row.id,
        patient_id: 1 + pick(shop.seed, 32, row.id)
            % shop.patients.count_at(row.created_generation),
        // Over-the-counter orders have no consultation.
        consultation_id: (!row.id.is_multiple_of(3))
            .then(|| 1 + pick(shop.seed, 33, row.id) % consultations_then),
        product,
        quantity,
        unit_price: money(price),
        total: money(price * i64::from(quantity)),
        status: ORDER_STATUS[(row.version as usize).min(ORDER_STATUS.len() - 1)],
        ordered_at: row.created_at(),
        updated_at: row.updated_at(),
    }
}
