"""Reference constants the expectation suites check against."""

from __future__ import annotations

# ISO 4217 List One, active alphabetic codes (SIX maintenance agency), including fund codes,
# precious metals and the X-codes the standard lists. Withdrawn and left out: ANG (replaced
# by XCG, 2025), BGN (Bulgaria adopted EUR, 2026), CUC, HRK, SLL, VEF, ZWL (replaced by ZWG).
_LIST_ONE_ALPHABETIC = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN
    BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK
    DJF DKK DOP DZD
    EGP ERN ETB EUR
    FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD
    HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK
    JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN
    NAD NGN NIO NOK NPR NZD
    OMR
    PAB PEN PGK PHP PKR PLN PYG
    QAR
    RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV
    WST
    XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX
    YER
    ZAR ZMW ZWG
"""
ISO_4217_ACTIVE: frozenset[str] = frozenset(_LIST_ONE_ALPHABETIC.split())

# Product variant SKUs look like `ABC-123456-01`: brand prefix, product number, variant number.
SKU_PATTERN = r"^[A-Z]{3}-\d{6}-\d{2}$"

# commercetools-style money: minor units with 0..4 fraction digits (high-precision prices).
MIN_FRACTION_DIGITS = 0
MAX_FRACTION_DIGITS = 4

LATITUDE_RANGE = (-90.0, 90.0)
LONGITUDE_RANGE = (-180.0, 180.0)
