//! Client messages the double understands: LOGIN7, SQL batch, and RPC `sp_executesql` with
//! typed parameters. (`tds-protocol` encodes these but, being a client library, does not
//! decode them.)

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// What the client logged in with.
#[derive(Debug, Clone)]
pub struct Login {
    pub tds_version: u32,
    pub user: String,
    pub password: String,
    pub app_name: String,
    pub database: String,
    /// Windows authentication (OptionFlags2's fIntSecurity): `sspi` then holds the client's
    /// first security token (an NTLM NEGOTIATE), and the user and password fields are empty.
    pub integrated_security: bool,
    pub sspi: Vec<u8>,
}

/// A parameter value as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A NULL of a known type (a typed NULL: its TYPE_INFO, then a NULL length).
    Null,
    Int(i64),
    Text(String),
    /// `datetime`: days since 1900-01-01 and 1/300 s.
    DateTime {
        days: i32,
        fragments: u32,
    },
    /// `smalldatetime`: days since 1900-01-01 and minutes.
    SmallDateTime {
        days: u16,
        minutes: u16,
    },
    DateTime2 {
        at: NaiveDateTime,
        scale: u8,
    },
    Date(NaiveDate),
    /// Another type, by TYPE_INFO id.
    Other(u8),
}

impl ParamValue {
    /// The SQL type name, as `sp_executesql`'s `@params` would declare it.
    pub fn type_name(&self) -> String {
        match self {
            ParamValue::Null => "null".into(),
            ParamValue::Int(_) => "int".into(),
            ParamValue::Text(_) => "nvarchar".into(),
            ParamValue::DateTime { .. } => "datetime".into(),
            ParamValue::SmallDateTime { .. } => "smalldatetime".into(),
            ParamValue::DateTime2 { scale, .. } => format!("datetime2({scale})"),
            ParamValue::Date(_) => "date".into(),
            ParamValue::Other(id) => format!("type 0x{id:02X}"),
        }
    }

    /// The instant in units of 1/(3·10⁹) s since 0001-01-01: fine enough to hold `datetime`'s
    /// 1/300 s and `datetime2`'s 100 ns exactly, so comparisons are exact, as SQL Server's are
    /// (compatibility level 130+).
    pub fn exact(&self) -> Option<i128> {
        const PER_SECOND: i128 = 3_000_000_000;
        let epoch = NaiveDate::from_ymd_opt(1, 1, 1)?;
        let base1900 = (NaiveDate::from_ymd_opt(1900, 1, 1)? - epoch).num_days() as i128;
        let day = 86_400 * PER_SECOND;
        match self {
            ParamValue::DateTime { days, fragments } => {
                Some((base1900 + i128::from(*days)) * day + i128::from(*fragments) * 10_000_000)
            }
            ParamValue::SmallDateTime { days, minutes } => {
                Some((base1900 + i128::from(*days)) * day + i128::from(*minutes) * 60 * PER_SECOND)
            }
            ParamValue::DateTime2 { at, .. } => Some(exact_of(*at)),
            ParamValue::Date(d) => Some((*d - epoch).num_days() as i128 * day),
            _ => None,
        }
    }
}

/// An instant with nanosecond resolution in the units of [`ParamValue::exact`].
pub fn exact_of(t: NaiveDateTime) -> i128 {
    let epoch = NaiveDate::from_ymd_opt(1, 1, 1).expect("epoch");
    let nanos = (t - epoch.and_time(NaiveTime::MIN))
        .num_nanoseconds()
        .map(i128::from)
        .unwrap_or_else(|| {
            let d = t - epoch.and_time(NaiveTime::MIN);
            i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
        });
    nanos * 3
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub value: ParamValue,
    /// The type `sp_executesql`'s `@params` list declares for it (`bigint`, `nvarchar(4000)`,
    /// `datetime2`, …), as the client wrote it.
    pub declared: String,
}

/// A SQL batch, or an `sp_executesql` call with its statement and parameters.
#[derive(Debug, Clone)]
pub struct Request {
    pub sql: String,
    pub params: Vec<Param>,
    pub rpc: bool,
    /// The transaction descriptor the request carried in its ALL_HEADERS (`None`: 0, no
    /// transaction): how a client says which transaction a request belongs to.
    pub transaction: Option<u64>,
    /// A parameter the server cannot decode, which it refuses the whole request for (error
    /// 8009); the parameters after it are not read.
    pub refused: Option<Refused>,
}

/// A parameter whose data type the server does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 1-based, counting `sp_executesql`'s own `@stmt` and `@params`, as the server counts.
    pub ordinal: usize,
    pub name: String,
    pub type_code: u8,
}

impl Refused {
    /// Error 8009 in SQL Server's words, as Babelfish for PostgreSQL answers it.
    pub fn message(&self) -> String {
        format!(
            "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream \
             is incorrect. Parameter {} (\"{}\"): Data type 0x{:02X} is unknown.",
            self.ordinal, self.name, self.type_code
        )
    }
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| &p.value)
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos + n;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| format!("message ends at byte {} (wanted {n} more)", self.pos))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn utf16(&mut self, chars: usize) -> Result<String, String> {
        utf16(self.take(chars * 2)?)
    }
    fn le_uint(&mut self, n: usize) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(a))
    }
}

fn utf16(bytes: &[u8]) -> Result<String, String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| "invalid UTF-16".to_string())
}

/// LOGIN7 (MS-TDS 2.2.6.4): fixed fields, then offset/length pairs into the variable part.
pub fn login7(payload: &[u8]) -> Result<Login, String> {
    let mut r = Reader::new(payload);
    let _length = r.u32()?;
    let tds_version = r.u32()?;
    let field = |offset_at: usize| -> Result<String, String> {
        let mut r = Reader::new(payload);
        r.take(offset_at)?;
        let offset = usize::from(r.u16()?);
        let chars = usize::from(r.u16()?);
        let mut r = Reader::new(payload);
        r.take(offset)?;
        r.utf16(chars)
    };
    let password = {
        let mut r = Reader::new(payload);
        r.take(44)?;
        let offset = usize::from(r.u16()?);
        let chars = usize::from(r.u16()?);
        let mut r = Reader::new(payload);
        r.take(offset)?;
        // Each byte is nibble-swapped and XORed with 0xA5 on the wire.
        let clear: Vec<u8> = r
            .take(chars * 2)?
            .iter()
            .map(|b| {
                let x = b ^ 0xA5;
                x.rotate_left(4)
            })
            .collect();
        utf16(&clear)?
    };
    // OptionFlags2 (byte 25), bit fIntSecurity; the SSPI field is ibSSPI/cbSSPI (bytes 78, 80),
    // its length in bytes, not characters, and in cbSSPILong (byte 90) when it is 0xFFFF.
    let integrated_security = payload.get(25).is_some_and(|f| f & 0x80 != 0);
    let sspi = {
        let mut r = Reader::new(payload);
        r.take(78)?;
        let offset = usize::from(r.u16()?);
        let short = r.u16()?;
        let len = if short == 0xFFFF {
            let mut r = Reader::new(payload);
            r.take(90)?;
            r.u32()? as usize
        } else {
            usize::from(short)
        };
        let mut r = Reader::new(payload);
        r.take(offset)?;
        r.take(len)?.to_vec()
    };
    Ok(Login {
        tds_version,
        user: field(40)?,
        password,
        app_name: field(48)?,
        database: field(68)?,
        integrated_security,
        sspi,
    })
}

/// ALL_HEADERS (MS-TDS 2.2.5.3): the transaction descriptor header, if any; other headers
/// (query notifications, trace activity) are skipped.
fn all_headers(r: &mut Reader<'_>) -> Result<Option<u64>, String> {
    let total = r.u32()? as usize;
    let block = r.take(total.saturating_sub(4))?;
    let mut h = Reader::new(block);
    let mut transaction = None;
    while h.pos < block.len() {
        let length = h.u32()? as usize;
        let kind = h.u16()?;
        let data = h.take(length.saturating_sub(6))?;
        if kind == 0x0002 {
            let mut d = Reader::new(data);
            transaction = Some(d.u64()?).filter(|&t| t != 0);
        }
    }
    Ok(transaction)
}

/// SQL batch: ALL_HEADERS, then the SQL text in UTF-16.
pub fn sql_batch(payload: &[u8]) -> Result<Request, String> {
    let mut r = Reader::new(payload);
    let transaction = all_headers(&mut r)?;
    let sql = utf16(&payload[r.pos..])?;
    Ok(Request {
        sql,
        params: Vec::new(),
        rpc: false,
        transaction,
        refused: None,
    })
}

/// RPC: ALL_HEADERS, procedure (by id or name), option flags, then parameters.
pub fn rpc(payload: &[u8]) -> Result<Request, String> {
    let mut r = Reader::new(payload);
    let transaction = all_headers(&mut r)?;
    let name_len = r.u16()?;
    if name_len == 0xFFFF {
        let id = r.u16()?;
        if id != 10 {
            return Err(format!(
                "only sp_executesql (proc id 10) is served, not {id}"
            ));
        }
    } else {
        let name = r.utf16(usize::from(name_len))?;
        if !name.eq_ignore_ascii_case("sp_executesql") {
            return Err(format!("only sp_executesql is served, not {name}"));
        }
    }
    let _flags = r.u16()?;
    let mut params = Vec::new();
    let mut refused = None;
    while r.pos < payload.len() {
        let chars = usize::from(r.u8()?);
        let name = r.utf16(chars)?;
        let _status = r.u8()?;
        // A parameter of type NULLTYPE (0x1F: no type, no value), which is how tiberius sends
        // a NULL string, date or timestamp, is refused by Babelfish for PostgreSQL (seen on
        // 4.3) with error 8009 in SQL Server's wording, naming the parameter: the double
        // refuses it the same way, so a NULL sent untyped fails here as it fails there. A
        // typed NULL (its TYPE_INFO, then a NULL length) is served. NULLTYPE carries no
        // length, so nothing after it can be read.
        if r.data.get(r.pos) == Some(&0x1F) {
            refused = Some(Refused {
                ordinal: params.len() + 1,
                name,
                type_code: 0x1F,
            });
            break;
        }
        let value = param_value(&mut r)?;
        params.push(Param {
            name,
            value,
            declared: String::new(),
        });
    }
    let mut params = params.into_iter();
    let sql = match params.next().map(|p| p.value) {
        Some(ParamValue::Text(s)) => s,
        other => {
            return Err(format!(
                "first sp_executesql parameter is {other:?}, not text"
            ));
        }
    };
    // The second is the `@params` declaration list ("@P1 bigint,@P2 nvarchar(4000),…", or
    // the integer 0 when there are none); the rest are the values.
    let declarations = match params.next().map(|p| p.value) {
        Some(ParamValue::Text(list)) => list,
        _ => String::new(),
    };
    let mut params: Vec<Param> = params.collect();
    // Split at each `@`, not at commas: `numeric(18,2)` has one.
    for declaration in declarations.split('@').filter(|d| !d.trim().is_empty()) {
        if let Some((name, ty)) = declaration.trim().split_once(' ') {
            let name = format!("@{name}");
            if let Some(p) = params
                .iter_mut()
                .find(|p| p.name.eq_ignore_ascii_case(&name))
            {
                p.declared = ty.trim().trim_end_matches(',').trim().to_string();
            }
        }
    }
    Ok(Request {
        sql,
        params,
        rpc: true,
        transaction,
        refused,
    })
}

fn param_value(r: &mut Reader<'_>) -> Result<ParamValue, String> {
    let ty = r.u8()?;
    match ty {
        // NVARCHAR / NCHAR
        0xE7 | 0xEF => {
            let max = r.u16()?;
            r.take(5)?; // collation
            if max == 0xFFFF {
                let total = r.u64()?;
                if total == u64::MAX {
                    return Ok(ParamValue::Null);
                }
                let mut bytes = Vec::new();
                loop {
                    let n = r.u32()? as usize;
                    if n == 0 {
                        break;
                    }
                    bytes.extend_from_slice(r.take(n)?);
                }
                Ok(ParamValue::Text(utf16(&bytes)?))
            } else {
                let n = r.u16()?;
                if n == 0xFFFF {
                    return Ok(ParamValue::Null);
                }
                Ok(ParamValue::Text(utf16(r.take(usize::from(n))?)?))
            }
        }
        // INTN
        0x26 => {
            let _max = r.u8()?;
            let n = usize::from(r.u8()?);
            if n == 0 {
                return Ok(ParamValue::Null);
            }
            let raw = r.le_uint(n)?;
            let shift = 64 - 8 * n as u32;
            Ok(ParamValue::Int(((raw << shift) as i64) >> shift))
        }
        // DATETIMEN
        0x6F => {
            let _max = r.u8()?;
            match r.u8()? {
                0 => Ok(ParamValue::Null),
                8 => Ok(ParamValue::DateTime {
                    days: r.u32()? as i32,
                    fragments: r.u32()?,
                }),
                4 => Ok(ParamValue::SmallDateTime {
                    days: r.u16()?,
                    minutes: r.u16()?,
                }),
                n => Err(format!("datetimen of length {n}")),
            }
        }
        // DATETIME2N
        0x2A => {
            let scale = r.u8()?;
            let n = usize::from(r.u8()?);
            if n == 0 {
                return Ok(ParamValue::Null);
            }
            let increments = r.le_uint(n - 3)?;
            let days = r.le_uint(3)?;
            let date =
                NaiveDate::from_ymd_opt(1, 1, 1).expect("epoch") + Duration::days(days as i64);
            let nanos = increments * 10u64.pow(9 - u32::from(scale));
            let at = date.and_time(NaiveTime::MIN) + Duration::nanoseconds(nanos as i64);
            Ok(ParamValue::DateTime2 { at, scale })
        }
        // DATEN
        0x28 => {
            let n = usize::from(r.u8()?);
            if n == 0 {
                return Ok(ParamValue::Null);
            }
            let days = r.le_uint(3)?;
            Ok(ParamValue::Date(
                NaiveDate::from_ymd_opt(1, 1, 1).expect("epoch") + Duration::days(days as i64),
            ))
        }
        // BITN, FLTN, GUID, MONEYN: one length byte in TYPE_INFO and one before the value.
        0x68 | 0x6D | 0x24 | 0x6E => {
            let _max = r.u8()?;
            let n = usize::from(r.u8()?);
            r.take(n)?;
            Ok(ParamValue::Other(ty))
        }
        other => Err(format!(
            "parameter type 0x{other:02X} is not served by the double"
        )),
    }
}
