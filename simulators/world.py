"""The seeded world shared by every simulated system.

One ``World`` is a deterministic function of ``(seed, products)``. It owns

* the beauty catalog: brands (with 3-letter codes), product types, nested categories;
* the supply channels (warehouses and stores);
* the product plan: for product number ``n`` (1-based) its brand, product type and variant count,
  from which the SKUs follow (``{BRAND}-{n:06d}-{variant:02d}``). Other systems (payments,
  warehouse, analytics) must take their SKUs from :attr:`World.skus` so every system agrees;
* generators of commercetools-shaped documents (products, inventory entries, channels, categories,
  product types). They yield plain dicts one at a time so that the commerce store can turn each into
  a compact record and drop the dict, keeping memory lean for big worlds.

Time: documents carry ISO-8601 UTC timestamps with exactly millisecond precision (``...123Z``). All
initial timestamps lie in 2025, before any server start; later changes take their time from
:class:`Clock`, which never goes backwards.
"""

from __future__ import annotations

import random
import re
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate

# ---------------------------------------------------------------------------------------------------
# time helpers
# ---------------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Initial timestamps are drawn from [WORLD_START, WORLD_END).
WORLD_START_MS = 1735689600000  # 2025-01-01T00:00:00.000Z
WORLD_END_MS = 1767225600000  # 2026-01-01T00:00:00.000Z
_DAY_MS = 86_400_000


@lru_cache(maxsize=262_144)
def format_ms(ms: int) -> str:
    """Epoch milliseconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    secs, rem = divmod(ms, 1000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem:03d}Z"


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@lru_cache(maxsize=262_144)
def parse_iso_us(text: str) -> int:
    """ISO-8601 instant -> epoch microseconds (naive values are taken as UTC).

    Raises ``ValueError`` when the text is not an ISO-8601 date or date-time.
    """
    s = text.strip()
    if not s or len(s) > 64:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    if _DATE_ONLY.match(s):
        s += "T00:00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@lru_cache(maxsize=4096)
def _day_ms(date: str) -> int:
    return parse_iso_us(date) // 1000


def parse_ms(text: str) -> int:
    """ISO-8601 instant -> epoch milliseconds (floored); fast path for ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if len(text) == 24 and text[23] == "Z" and text[19] == "." and text[10] == "T":
        try:
            return (
                _day_ms(text[:10])
                + int(text[11:13]) * 3_600_000
                + int(text[14:16]) * 60_000
                + int(text[17:19]) * 1000
                + int(text[20:23])
            )
        except ValueError:
            pass
    return parse_iso_us(text) // 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Clock:
    """Issues change timestamps: wall clock in UTC ms, never going backwards."""

    def __init__(self, floor_ms: int = 0) -> None:
        self._last = floor_ms
        self._lock = threading.Lock()

    def advance_to(self, floor_ms: int) -> None:
        with self._lock:
            self._last = max(self._last, floor_ms)

    def now(self) -> int:
        with self._lock:
            ms = max(now_ms(), self._last)
            self._last = ms
            return ms

    @property
    def last(self) -> int:
        return self._last


# ---------------------------------------------------------------------------------------------------
# ids
# ---------------------------------------------------------------------------------------------------

_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def uuid4_str(rng: random.Random) -> str:
    """A uuid4-shaped string drawn from ``rng`` (deterministic for a seeded rng)."""
    h = f"{(rng.getrandbits(128) & _V4_CLEAR) | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# ---------------------------------------------------------------------------------------------------
# static catalog
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Brand:
    name: str
    code: str


BRANDS: tuple[Brand, ...] = (
    Brand("Lumiere Paris", "LUM"),
    Brand("Velvet Ash", "VEL"),
    Brand("Nordic Glow", "NRG"),
    Brand("Rose & Rye", "RSR"),
    Brand("Aurora Skin", "AUR"),
    Brand("Marlowe Beauty", "MRL"),
    Brand("Solstice", "SOL"),
    Brand("Pure Petal", "PPT"),
    Brand("Gilded Fox", "GFX"),
    Brand("Oceane", "OCE"),
    Brand("Bloom Theory", "BLT"),
    Brand("Ivory Lane", "IVL"),
    Brand("Copper Moon", "CPM"),
    Brand("Sable & Stone", "SBS"),
    Brand("Fern Apothecary", "FRN"),
    Brand("Atelier Noir", "ATN"),
)

# key, parent key, en-US name, fr-FR name
CATEGORY_TABLE: tuple[tuple[str, str | None, str, str], ...] = (
    ("makeup", None, "Makeup", "Maquillage"),
    ("skincare", None, "Skincare", "Soin du visage"),
    ("fragrance", None, "Fragrance", "Parfum"),
    ("hair", None, "Hair", "Cheveux"),
    ("bath-body", None, "Bath & Body", "Bain et corps"),
    ("tools", None, "Tools & Brushes", "Accessoires"),
    ("makeup-lips", "makeup", "Lips", "Levres"),
    ("makeup-face", "makeup", "Face", "Teint"),
    ("makeup-eyes", "makeup", "Eyes", "Yeux"),
    ("makeup-nails", "makeup", "Nails", "Ongles"),
    ("skincare-cleansers", "skincare", "Cleansers", "Nettoyants"),
    ("skincare-moisturizers", "skincare", "Moisturizers", "Hydratants"),
    ("skincare-serums", "skincare", "Serums", "Serums"),
    ("skincare-suncare", "skincare", "Sun Care", "Solaires"),
    ("fragrance-women", "fragrance", "Women's Fragrance", "Parfum femme"),
    ("fragrance-men", "fragrance", "Men's Fragrance", "Parfum homme"),
    ("hair-shampoo", "hair", "Shampoo & Conditioner", "Shampooing et apres-shampooing"),
    ("hair-styling", "hair", "Styling", "Coiffage"),
    ("bath-body-lotion", "bath-body", "Body Lotion", "Lait corporel"),
    ("tools-brushes", "tools", "Brushes", "Pinceaux"),
)

SHADES = (
    "Ivory", "Porcelain", "Sand", "Beige", "Honey", "Caramel", "Mocha", "Espresso", "Ruby", "Coral",
    "Nude", "Berry", "Plum", "Rosewood", "Crimson", "Mauve", "Bronze", "Champagne", "Onyx", "Pearl",
)  # fmt: skip
SIZES = ("15 ml", "30 ml", "50 ml", "75 ml", "100 ml", "150 ml", "200 ml", "250 ml")


@dataclass(frozen=True)
class ProductTypeSpec:
    key: str
    noun_en: str
    noun_fr: str
    categories: tuple[str, ...]  # leaf category keys, first is primary
    price_range: tuple[int, int]  # USD whole units
    dimension: str  # "shade" or "size": what differs between variants


PRODUCT_TYPES: tuple[ProductTypeSpec, ...] = (
    ProductTypeSpec("lipstick", "Lipstick", "Rouge a levres", ("makeup-lips",), (18, 42), "shade"),
    ProductTypeSpec("foundation", "Foundation", "Fond de teint", ("makeup-face",), (28, 64), "shade"),
    ProductTypeSpec("mascara", "Mascara", "Mascara", ("makeup-eyes",), (16, 34), "shade"),
    ProductTypeSpec("eyeshadow", "Eyeshadow Palette", "Palette de fards", ("makeup-eyes",), (24, 68), "shade"),
    ProductTypeSpec("nail-polish", "Nail Polish", "Vernis a ongles", ("makeup-nails",), (9, 24), "shade"),
    ProductTypeSpec("cleanser", "Cleanser", "Nettoyant", ("skincare-cleansers",), (14, 38), "size"),
    ProductTypeSpec("moisturizer", "Moisturizer", "Creme hydratante", ("skincare-moisturizers",), (22, 88), "size"),
    ProductTypeSpec("serum", "Serum", "Serum", ("skincare-serums",), (32, 120), "size"),
    ProductTypeSpec("sunscreen", "Sunscreen SPF 50", "Ecran solaire SPF 50", ("skincare-suncare",), (18, 44), "size"),
    ProductTypeSpec(
        "fragrance", "Eau de Parfum", "Eau de parfum", ("fragrance-women", "fragrance-men"), (48, 180), "size"
    ),
    ProductTypeSpec("shampoo", "Shampoo", "Shampooing", ("hair-shampoo",), (12, 36), "size"),
    ProductTypeSpec("styling", "Styling Cream", "Creme coiffante", ("hair-styling",), (14, 32), "size"),
    ProductTypeSpec("body-lotion", "Body Lotion", "Lait pour le corps", ("bath-body-lotion",), (12, 42), "size"),
    ProductTypeSpec("brush", "Makeup Brush", "Pinceau de maquillage", ("tools-brushes",), (10, 58), "shade"),
)

ADJECTIVES: tuple[tuple[str, str], ...] = (
    ("Velvet Matte", "mat velours"), ("Radiant", "eclat"), ("Hydra Boost", "hydra boost"),
    ("Silk Touch", "toucher soie"), ("Ultra Fine", "ultra fin"), ("Glow Getter", "eclat lumiere"),
    ("Everlasting", "longue tenue"), ("Pure Calm", "pure apaisant"), ("Bold", "intense"),
    ("Dewy", "effet rosee"), ("Featherlight", "legerete plume"), ("Midnight", "minuit"),
    ("Botanical", "botanique"), ("Cloud Soft", "douceur nuage"), ("Luminous", "lumineux"),
    ("Precision", "precision"), ("Second Skin", "seconde peau"), ("Golden Hour", "heure doree"),
)  # fmt: skip

# key, roles, en-US, fr-FR, country, city, lng, lat
CHANNEL_TABLE: tuple[tuple[str, tuple[str, ...], str, str, str, str, float, float], ...] = (
    ("wh-us-east", ("InventorySupply",), "US East Warehouse", "Entrepot Est Etats-Unis",
     "US", "Edison", -74.4121, 40.5187),
    ("wh-us-west", ("InventorySupply",), "US West Warehouse", "Entrepot Ouest Etats-Unis",
     "US", "Reno", -119.8138, 39.5296),
    ("wh-fr-lyon", ("InventorySupply",), "Lyon Warehouse", "Entrepot de Lyon", "FR", "Lyon", 4.8357, 45.7640),
    ("wh-gb-mk", ("InventorySupply",), "Milton Keynes Warehouse", "Entrepot de Milton Keynes",
     "GB", "Milton Keynes", -0.7594, 52.0406),
    ("wh-de-hamburg", ("InventorySupply",), "Hamburg Warehouse", "Entrepot de Hambourg",
     "DE", "Hamburg", 9.9937, 53.5511),
    ("store-us-nyc", ("InventorySupply", "ProductDistribution"), "New York Flagship", "Boutique de New York",
     "US", "New York", -73.9857, 40.7484),
    ("store-fr-paris", ("InventorySupply", "ProductDistribution"), "Paris Champs-Elysees",
     "Boutique Champs-Elysees", "FR", "Paris", 2.3522, 48.8566),
    ("store-gb-london", ("InventorySupply", "ProductDistribution"), "London Covent Garden",
     "Boutique de Covent Garden", "GB", "London", -0.1276, 51.5072),
)  # fmt: skip

#: (currency, country, rate from USD)
CURRENCIES: tuple[tuple[str, str, float], ...] = (("USD", "US", 1.0), ("EUR", "FR", 0.93), ("GBP", "GB", 0.80))

# variant count k=1..6, weights chosen so the mean is about 3.5
_VARIANT_WEIGHTS = (12, 15, 22, 23, 16, 12)
_VARIANT_CUM = tuple(accumulate(_VARIANT_WEIGHTS))

IMAGE_BASE = "https://images.beauty-hub.example/products"
MAX_PRODUCTS = 999_999


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def product_name(brand: Brand, ptype: ProductTypeSpec, adjective: tuple[str, str]) -> dict[str, str]:
    return {
        "en-US": f"{brand.name} {adjective[0]} {ptype.noun_en}",
        "fr-FR": f"{ptype.noun_fr} {adjective[1]} {brand.name}",
    }


def round_price(cents: float) -> int:
    """Round to a retail-looking amount ending in .00 or .50 minus one cent sometimes."""
    whole = max(1, round(cents / 50.0)) * 50
    return whole - 1 if whole % 100 == 0 else whole


def make_price(rng: random.Random, currency: str, country: str, cent_amount: int) -> dict:
    return {
        "id": uuid4_str(rng),
        "value": {
            "type": "centPrecision",
            "currencyCode": currency,
            "centAmount": cent_amount,
            "fractionDigits": 2,
        },
        "country": country,
    }


# ---------------------------------------------------------------------------------------------------
# the world
# ---------------------------------------------------------------------------------------------------


class World:
    """Deterministic world for ``(seed, products)``; see the module docstring."""

    def __init__(self, seed: int = 42, products: int = 1000) -> None:
        if not 0 <= products <= MAX_PRODUCTS:
            raise ValueError(f"products must be between 0 and {MAX_PRODUCTS}")
        self.seed = int(seed)
        self.products = int(products)
        self.brands = BRANDS
        self.product_types = PRODUCT_TYPES

        cat_rng = random.Random(f"{self.seed}/catalog")
        self.product_type_ids = [uuid4_str(cat_rng) for _ in PRODUCT_TYPES]
        self.category_ids = {key: uuid4_str(cat_rng) for key, *_ in CATEGORY_TABLE}
        self.channel_ids = [uuid4_str(cat_rng) for _ in CHANNEL_TABLE]
        self.catalog_times = [
            WORLD_START_MS + cat_rng.randrange(0, 30 * _DAY_MS) for _ in range(64)
        ]  # timestamps for the small collections (categories, channels, product types)

        # the product plan: brand index, type index, variant count per product number (1-based)
        plan_rng = random.Random(f"{self.seed}/plan")
        nb, nt = len(BRANDS), len(PRODUCT_TYPES)
        total_w = _VARIANT_CUM[-1]
        self.plan_brand = bytearray(products)
        self.plan_type = bytearray(products)
        self.plan_variants = bytearray(products)
        for i in range(products):
            self.plan_brand[i] = plan_rng.randrange(nb)
            self.plan_type[i] = plan_rng.randrange(nt)
            self.plan_variants[i] = bisect_right(_VARIANT_CUM, plan_rng.randrange(total_w)) + 1
        self._skus: list[str] | None = None

        # coarse pools of timestamps: many records share the same millisecond (deliberate ties)
        time_rng = random.Random(f"{self.seed}/time")
        span = WORLD_END_MS - WORLD_START_MS - 60 * _DAY_MS
        self.product_time_pool = sorted(
            WORLD_START_MS + 60 * _DAY_MS + time_rng.randrange(span) for _ in range(max(8, products // 6))
        )
        n_inv = max(8, (int(sum(self.plan_variants)) * 4) // 6)
        self.inventory_time_pool = sorted(
            WORLD_START_MS + 60 * _DAY_MS + time_rng.randrange(span) for _ in range(n_inv)
        )

    # -- plan -----------------------------------------------------------------------------------
    def product_skus(self, number: int) -> list[str]:
        """SKUs of product ``number`` (1-based), master first."""
        code = BRANDS[self.plan_brand[number - 1]].code
        return [f"{code}-{number:06d}-{v:02d}" for v in range(1, self.plan_variants[number - 1] + 1)]

    @property
    def skus(self) -> list[str]:
        """All catalog SKUs in product order (the clean world's SKUs; shared by every system)."""
        if self._skus is None:
            out: list[str] = []
            for n in range(1, self.products + 1):
                out.extend(self.product_skus(n))
            self._skus = out
        return self._skus

    @property
    def variant_count(self) -> int:
        return int(sum(self.plan_variants))

    @property
    def max_initial_ms(self) -> int:
        pools = [self.catalog_times, self.product_time_pool, self.inventory_time_pool]
        return max(max(p) for p in pools if p)

    # -- documents ------------------------------------------------------------------------------
    @staticmethod
    def _versioned_times(rng: random.Random, pool: list[int]) -> tuple[int, int, int]:
        """(version, createdAt ms, lastModifiedAt ms) with lastModifiedAt drawn from a coarse pool."""
        modified = pool[rng.randrange(len(pool))]
        if rng.random() < 0.35:
            return 1, modified, modified
        created = max(WORLD_START_MS, modified - rng.randrange(1, 120 * _DAY_MS))
        return rng.randrange(2, 16), created, modified

    def iter_product_types(self) -> Iterator[dict]:
        for i, spec in enumerate(PRODUCT_TYPES):
            ts = format_ms(self.catalog_times[i])
            yield {
                "id": self.product_type_ids[i],
                "version": 1,
                "key": spec.key,
                "name": spec.noun_en,
                "description": f"{spec.noun_en} products",
                "attributes": [
                    {"name": "brand", "type": {"name": "text"}},
                    {"name": "shade", "type": {"name": "text"}},
                    {"name": "size", "type": {"name": "text"}},
                    {"name": "vegan", "type": {"name": "boolean"}},
                ],
                "createdAt": ts,
                "lastModifiedAt": ts,
            }

    def iter_categories(self) -> Iterator[dict]:
        ids = self.category_ids
        parents = {key: parent for key, parent, *_ in CATEGORY_TABLE}
        for i, (key, parent, en, fr) in enumerate(CATEGORY_TABLE):
            created = self.catalog_times[20 + i]
            modified = created + (i % 3) * 3_600_000
            ancestors = []
            p = parent
            while p is not None:
                ancestors.insert(0, {"typeId": "category", "id": ids[p]})
                p = parents[p]
            doc = {
                "id": ids[key],
                "version": 1 + i % 3,
                "key": key,
                "name": {"en-US": en, "fr-FR": fr},
                "slug": {"en-US": slugify(en), "fr-FR": slugify(fr)},
                "description": {"en-US": f"Shop {en.lower()}", "fr-FR": f"Decouvrez {fr.lower()}"},
                "ancestors": ancestors,
                "orderHint": f"0.{i + 1:02d}",
                "createdAt": format_ms(created),
                "lastModifiedAt": format_ms(modified),
            }
            if parent is not None:
                doc["parent"] = {"typeId": "category", "id": ids[parent]}
            yield doc

    def iter_channels(self) -> Iterator[dict]:
        for i, (key, roles, en, fr, country, city, lng, lat) in enumerate(CHANNEL_TABLE):
            created = self.catalog_times[48 + i]
            yield {
                "id": self.channel_ids[i],
                "version": 1 + i % 2,
                "key": key,
                "roles": list(roles),
                "name": {"en-US": en, "fr-FR": fr},
                "address": {"country": country, "city": city},
                "geoLocation": {"type": "Point", "coordinates": [lng, lat]},
                "createdAt": format_ms(created),
                "lastModifiedAt": format_ms(created + (i % 2) * 86_400_000),
            }

    def make_variant(
        self,
        rng: random.Random,
        brand: Brand,
        ptype: ProductTypeSpec,
        product_key: str,
        variant_id: int,
        sku: str | None,
        base_usd: int,
        dim_value: str,
    ) -> dict:
        """One ProductVariant with USD/EUR/GBP prices (``sku=None`` leaves the field out)."""
        factor = 1.0
        if ptype.dimension == "size":
            factor = 1.0 + 0.45 * SIZES.index(dim_value) if dim_value in SIZES else 1.0
        usd_cents = base_usd * 100 * factor
        prices = [make_price(rng, cur, country, round_price(usd_cents * rate)) for cur, country, rate in CURRENCIES]
        variant: dict = {"id": variant_id}
        if sku is not None:
            variant["sku"] = sku
        variant["key"] = f"{product_key}-{variant_id:02d}"
        variant["prices"] = prices
        variant["images"] = [
            {"url": f"{IMAGE_BASE}/{product_key}/{variant_id:02d}.jpg", "dimensions": {"w": 800, "h": 800}}
        ]
        variant["attributes"] = [
            {"name": "brand", "value": brand.name},
            {"name": "shade", "value": dim_value if ptype.dimension == "shade" else "Universal"},
            {"name": "size", "value": dim_value if ptype.dimension == "size" else "Standard"},
            {"name": "vegan", "value": rng.random() < 0.4},
        ]
        variant["assets"] = []
        return variant

    def iter_products(self) -> Iterator[dict]:
        """ProductProjection documents (current, published) for product numbers 1..products."""
        rng = random.Random(f"{self.seed}/products")
        cat_ids = self.category_ids
        parents = {key: parent for key, parent, *_ in CATEGORY_TABLE}
        pool = self.product_time_pool
        for idx in range(self.products):
            number = idx + 1
            brand = BRANDS[self.plan_brand[idx]]
            type_idx = self.plan_type[idx]
            ptype = PRODUCT_TYPES[type_idx]
            k = self.plan_variants[idx]
            pid = uuid4_str(rng)
            key = f"prod-{number:06d}"
            adjective = ADJECTIVES[rng.randrange(len(ADJECTIVES))]
            name = product_name(brand, ptype, adjective)
            lo, hi = ptype.price_range
            base_usd = rng.randint(lo, hi)
            leaf = ptype.categories[rng.randrange(len(ptype.categories))]
            cats = [leaf]
            if rng.random() < 0.4:
                parent = parents[leaf]
                if parent is not None:
                    cats.append(parent)
            dims = rng.sample(SHADES, k) if ptype.dimension == "shade" else list(SIZES[:k])
            variants = [
                self.make_variant(
                    rng, brand, ptype, key, v, f"{brand.code}-{number:06d}-{v:02d}", base_usd, dims[v - 1]
                )
                for v in range(1, k + 1)
            ]
            version, created, modified = self._versioned_times(rng, pool)
            yield {
                "id": pid,
                "version": version,
                "key": key,
                "productType": {"typeId": "product-type", "id": self.product_type_ids[type_idx]},
                "name": name,
                "description": {
                    "en-US": f"{name['en-US']} by {brand.name}. {adjective[0]} finish, cruelty free.",
                    "fr-FR": f"{name['fr-FR']}. Fini {adjective[1]}, non teste sur les animaux.",
                },
                "slug": {
                    "en-US": f"{slugify(name['en-US'])}-{number:06d}",
                    "fr-FR": f"{slugify(name['fr-FR'])}-{number:06d}",
                },
                "categories": [{"typeId": "category", "id": cat_ids[c]} for c in cats],
                "categoryOrderHints": {},
                "masterVariant": variants[0],
                "variants": variants[1:],
                "searchKeywords": {},
                "hasStagedChanges": False,
                "published": True,
                "createdAt": format_ms(created),
                "lastModifiedAt": format_ms(modified),
            }

    def iter_inventory(self) -> Iterator[dict]:
        """InventoryEntry documents: every SKU on 3-5 distinct supply channels."""
        rng = random.Random(f"{self.seed}/inventory")
        rnd = rng.random
        channel_refs = [{"typeId": "channel", "id": cid} for cid in self.channel_ids]
        n_channels = len(channel_refs)
        pool = self.inventory_time_pool
        n_pool = len(pool)
        span = 120 * _DAY_MS
        for number in range(1, self.products + 1):
            for sku in self.product_skus(number):
                for ch in rng.sample(range(n_channels), rng.randint(3, min(5, n_channels))):
                    on_stock = 0 if rnd() < 0.08 else 1 + int(rnd() * 600)
                    reserved = int(rnd() * (min(on_stock, 25) + 1))
                    modified = pool[int(rnd() * n_pool)]
                    if rnd() < 0.35:
                        version, created = 1, modified
                    else:
                        version = 2 + int(rnd() * 14)
                        created = max(WORLD_START_MS, modified - 1 - int(rnd() * span))
                    doc = {
                        "id": uuid4_str(rng),
                        "version": version,
                        "sku": sku,
                        "supplyChannel": channel_refs[ch],
                        "quantityOnStock": on_stock,
                        "availableQuantity": on_stock - reserved,
                        "restockableInDays": 1 + int(rnd() * 30),
                    }
                    if rnd() < 0.2:
                        doc["expectedDelivery"] = format_ms(modified + (2 + int(rnd() * 39)) * _DAY_MS)
                    doc["createdAt"] = format_ms(created)
                    doc["lastModifiedAt"] = format_ms(modified)
                    yield doc


# ---------------------------------------------------------------------------------------------------
# orders and customers (one book per world, shared by commerce and payments)
# ---------------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Amelie", "Noah", "Chloe", "Liam", "Emma", "Oliver", "Lea", "Hugo", "Mia", "Lucas", "Sofia", "Arthur",
    "Grace", "Jules", "Isla", "Louis", "Ava", "Leon", "Zoe", "Felix", "Nina", "Theo", "Clara", "Max",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Smith", "Bernard", "Jones", "Dubois", "Taylor", "Moreau", "Brown", "Laurent", "Wilson",
    "Muller", "Evans", "Schmidt", "Roux", "Walker", "Fischer", "Lefebvre", "Wright", "Weber", "Garcia",
)  # fmt: skip
#: country -> (currency, tax rate in basis points, cities)
ORDER_COUNTRIES: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "US": ("USD", 800, ("New York", "Austin", "Seattle", "Chicago")),
    "FR": ("EUR", 2000, ("Paris", "Lyon", "Bordeaux", "Lille")),
    "GB": ("GBP", 2000, ("London", "Leeds", "Bristol", "Glasgow")),
    "DE": ("EUR", 1900, ("Berlin", "Hamburg", "Munich", "Cologne")),
}
_USD_RATE = {currency: rate for currency, _country, rate in CURRENCIES}
#: orders are placed in the ORDER_WINDOW_DAYS before the book's anchor (the world's build time)
ORDER_WINDOW_DAYS = 90
ORDER_STATES = ("Open", "Confirmed", "Complete", "Cancelled")
PAYMENT_STATES = ("Pending", "Paid", "Failed", "BalanceDue", "CreditOwed")
SHIPMENT_STATES = ("Pending", "Ready", "Shipped", "Delivered")
_PAYMENT_WEIGHTS = (8, 80, 4, 4, 4)  # in the order of PAYMENT_STATES


def money(currency: str, cent_amount: int) -> dict:
    """A commercetools centPrecision money value."""
    return {"type": "centPrecision", "currencyCode": currency, "centAmount": cent_amount, "fractionDigits": 2}


@dataclass(frozen=True, slots=True)
class OrderLinePlan:
    line_id: str
    price_id: str
    sku: str
    quantity: int
    unit_cents: int


@dataclass(frozen=True, slots=True)
class OrderPlan:
    """An order as the world first has it (commerce serves it; payments charges for it)."""

    id: str
    number: int
    customer_id: str | None  # None: a guest checkout
    email: str
    country: str
    currency: str
    created_ms: int
    modified_ms: int
    version: int
    order_state: str
    payment_state: str
    shipment_state: str
    lines: tuple[OrderLinePlan, ...]

    @property
    def order_number(self) -> str:
        return f"BH-{self.number:07d}"

    @property
    def total_cents(self) -> int:
        return sum(line.unit_cents * line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class CustomerPlan:
    id: str
    number: int
    email: str
    first_name: str
    last_name: str
    country: str
    city: str
    address_id: str
    created_ms: int
    modified_ms: int
    version: int


def order_states(rng: random.Random, payment_state: str, age_ms: int) -> tuple[str, str, int]:
    """(orderState, shipmentState, version) of an order ``age_ms`` old with this payment state."""
    if payment_state == "Pending":
        return "Open", "Pending", 1
    if payment_state == "Failed":
        return ("Cancelled", "Pending", 2) if rng.random() < 0.8 else ("Open", "Pending", 1)
    days = age_ms / _DAY_MS
    shipment = "Delivered" if days > 7 else "Shipped" if days > 3 else "Ready" if days > 1 else "Pending"
    steps = 1 + SHIPMENT_STATES.index(shipment)
    if shipment == "Delivered":
        return "Complete", shipment, steps + 2
    return "Confirmed", shipment, steps + 1


def unit_price_cents(world: World, rng: random.Random, sku: str, currency: str) -> int:
    """A plausible price paid for ``sku`` (drawn in the product type's range, in ``currency``)."""
    lo, hi = PRODUCT_TYPES[world.plan_type[int(sku[4:10]) - 1]].price_range
    return round_price(rng.randint(lo, hi) * 100 * _USD_RATE[currency])


class OrderBook:
    """The world's customers and orders: about products/4 customers and products/2 orders.

    Deterministic for the world's seed except for the anchor: every timestamp lies within
    :data:`ORDER_WINDOW_DAYS` before ``anchor_ms`` (the moment the book is built), so payment events
    derived from the orders fall inside a 30-day event window.
    """

    def __init__(self, world: World, anchor_ms: int | None = None) -> None:
        self.world = world
        self.anchor_ms = (now_ms() if anchor_ms is None else anchor_ms) // 1000 * 1000
        rng = random.Random(f"{world.seed}/orders")
        self.customers = [self._customer(rng, n) for n in range(1, world.products // 4 + 1)]
        window = ORDER_WINDOW_DAYS * _DAY_MS
        n_orders = world.products // 2
        # coarse pool: many orders share the same second (Stripe's `created` ties too)
        # (skewed to recent days, so churn finds orders still on their way)
        ages = (int(window * rng.random() ** 2) // 1000 * 1000 for _ in range(max(8, n_orders // 3)))
        pool = sorted(self.anchor_ms - 600_000 - age for age in ages)
        self.orders = [self.make_order(rng, n, pool[rng.randrange(len(pool))]) for n in range(1, n_orders + 1)]

    def _customer(self, rng: random.Random, number: int) -> CustomerPlan:
        first, last = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))], LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        email = f"{first}.{last}.{number}@example.com"
        if rng.random() < 0.8:
            email = email.lower()
        country = tuple(ORDER_COUNTRIES)[rng.randrange(len(ORDER_COUNTRIES))]
        cities = ORDER_COUNTRIES[country][2]
        created = self.anchor_ms - (ORDER_WINDOW_DAYS + 1) * _DAY_MS - rng.randrange(300 * _DAY_MS)
        version = rng.randint(1, 4)
        modified = created if version == 1 else created + rng.randrange(1, 60 * _DAY_MS)
        return CustomerPlan(
            id=uuid4_str(rng),
            number=number,
            email=email,
            first_name=first,
            last_name=last,
            country=country,
            city=cities[rng.randrange(len(cities))],
            address_id=uuid4_str(rng),
            created_ms=created,
            modified_ms=modified,
            version=version,
        )

    def make_order(self, rng: random.Random, number: int, created: int, fresh: bool = False) -> OrderPlan:
        """Order ``number`` placed at ``created``; ``fresh`` orders are just placed (Open, Pending)."""
        skus = self.world.skus
        customer = self.customers[rng.randrange(len(self.customers))] if self.customers else None
        if customer is None or rng.random() < 0.05:  # guest checkout
            customer_id, email = None, f"guest.{number}@example.com"
            country = tuple(ORDER_COUNTRIES)[rng.randrange(len(ORDER_COUNTRIES))]
        else:
            customer_id, email, country = customer.id, customer.email.lower(), customer.country
        currency = ORDER_COUNTRIES[country][0]
        picked = rng.sample(range(len(skus)), min(len(skus), rng.choice((1, 1, 2, 2, 3, 4))))
        lines = tuple(
            OrderLinePlan(
                line_id=uuid4_str(rng),
                price_id=uuid4_str(rng),
                sku=skus[i],
                quantity=rng.choice((1, 1, 1, 2, 2, 3)),
                unit_cents=unit_price_cents(self.world, rng, skus[i], currency),
            )
            for i in picked
        )
        payment_state = "Pending" if fresh else rng.choices(PAYMENT_STATES, _PAYMENT_WEIGHTS)[0]
        age = self.anchor_ms - created
        order_state, shipment_state, version = order_states(rng, payment_state, age)
        modified = created if version == 1 else created + rng.randrange(1, max(2, min(age, 10 * _DAY_MS)))
        return OrderPlan(
            id=uuid4_str(rng),
            number=number,
            customer_id=customer_id,
            email=email,
            country=country,
            currency=currency,
            created_ms=created,
            modified_ms=modified,
            version=version,
            order_state=order_state,
            payment_state=payment_state,
            shipment_state=shipment_state,
            lines=lines,
        )

    # -- documents ------------------------------------------------------------------------------
    @staticmethod
    def customer_doc(plan: CustomerPlan) -> dict:
        return {
            "id": plan.id,
            "version": plan.version,
            "customerNumber": f"C{plan.number:07d}",
            "email": plan.email,
            "firstName": plan.first_name,
            "lastName": plan.last_name,
            "addresses": [{"id": plan.address_id, "country": plan.country, "city": plan.city}],
            "isEmailVerified": plan.version > 1,
            "createdAt": format_ms(plan.created_ms),
            "lastModifiedAt": format_ms(plan.modified_ms),
        }

    @staticmethod
    def order_doc(plan: OrderPlan, product_id_of) -> dict:
        """The commercetools Order; ``product_id_of(sku)`` names the product holding a SKU."""
        currency = plan.currency
        line_items = []
        for line in plan.lines:
            number = int(line.sku[4:10])
            line_items.append(
                {
                    "id": line.line_id,
                    "productId": product_id_of(line.sku),
                    "productKey": f"prod-{number:06d}",
                    "variant": {"id": int(line.sku[11:]), "sku": line.sku},
                    "quantity": line.quantity,
                    "price": {"id": line.price_id, "value": money(currency, line.unit_cents)},
                    "totalPrice": money(currency, line.unit_cents * line.quantity),
                }
            )
        doc = {
            "id": plan.id,
            "version": plan.version,
            "orderNumber": plan.order_number,
        }
        if plan.customer_id is not None:
            doc["customerId"] = plan.customer_id
        doc.update(
            {
                "customerEmail": plan.email,
                "country": plan.country,
                "lineItems": line_items,
                "orderState": plan.order_state,
                "paymentState": plan.payment_state,
                "shipmentState": plan.shipment_state,
                "shippingAddress": {"country": plan.country},
                "createdAt": format_ms(plan.created_ms),
                "lastModifiedAt": format_ms(plan.modified_ms),
            }
        )
        price_order_totals(doc, currency)
        if plan.order_state == "Complete":
            doc["completedAt"] = doc["lastModifiedAt"]
        return doc


def price_order_totals(doc: dict, currency: str) -> None:
    """Set ``totalPrice`` and ``taxedPrice`` of an order document from its line items."""
    gross = sum(line["totalPrice"]["centAmount"] for line in doc["lineItems"])
    tax_bp = ORDER_COUNTRIES.get(doc.get("country", ""), ("", 0))[1]
    net = gross * 10_000 // (10_000 + tax_bp)
    doc["totalPrice"] = money(currency, gross)
    doc["taxedPrice"] = {
        "totalNet": money(currency, net),
        "totalGross": money(currency, gross),
        "totalTax": money(currency, gross - net),
    }


def order_book(world: World) -> OrderBook:
    """The world's :class:`OrderBook`, built on first use (its anchor is that moment)."""
    book = world.__dict__.get("_order_book")
    if book is None:
        book = OrderBook(world)
        world.__dict__["_order_book"] = book
    return book
