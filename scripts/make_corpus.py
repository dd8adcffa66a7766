#!/usr/bin/env python3
"""Generate the synthetic English->German parallel corpus in assets/corpus/.

The corpus is produced from a small hand-written grammar and lexicon, with a
fixed seed, so re-running this script reproduces the committed files byte for
byte.  German word order (verb second, verb-final subordinate clauses,
participles and infinitives in the right bracket), verb conjugation, article
and adjective declension (nominative / accusative / dative, weak / mixed /
strong endings) and "nicht" vs "kein" negation are modelled explicitly, so
the target side is grammatical German and the mapping is learnable by a tiny
transformer in a few CPU minutes.

Surface features the tokenizer / BPE pipeline has to cope with are sprinkled
in on purpose: apostrophes (don't, I'm, Anna's, o'clock), straight double
quotes, commas, question and exclamation marks, hyphenated words (well-known,
e-mail, T-shirt), numbers with separators (1,000 -> 1.000, 3.5 -> 3,5),
clock times (7:30) and the odd ampersand (Smith & Sons).

Usage:  python scripts/make_corpus.py [--out assets/corpus] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import sys

# ---------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------

P1S, P2S, P3S, P1P, P3P = range(5)

# English subject pronoun, German nominative, person, en object, de acc, de dat
PRONOUNS = [
    ("I", "ich", P1S, "me", "mich", "mir"),
    ("you", "du", P2S, "you", "dich", "dir"),
    ("he", "er", P3S, "him", "ihn", "ihm"),
    ("she", "sie", P3S, "her", "sie", "ihr"),
    ("we", "wir", P1P, "us", "uns", "uns"),
    ("they", "sie", P3P, "them", "sie", "ihnen"),
]

NAMES = ["Anna", "Peter", "Maria", "Thomas", "Lisa", "Michael", "Sarah",
         "Jonas", "Lena", "Paul", "Julia", "David", "Emma", "Felix", "Laura",
         "Martin"]

CITIES = [("Berlin", "Berlin"), ("Munich", "München"), ("Vienna", "Wien"),
          ("Hamburg", "Hamburg"), ("Cologne", "Köln"), ("Paris", "Paris"),
          ("London", "London"), ("Zurich", "Zürich"), ("Rome", "Rom"),
          ("Dresden", "Dresden")]

COMPANIES = ["Smith & Sons", "Baker & Partners", "Black & White",
             "Fischer & Klein", "Miller & Brown", "Weber & Co"]

# Nouns: en sg, en pl, de sg, de pl, gender, categories, flags
# categories: animal food drink thing clothes doc vehicle place person
# flags: mass (bare singular allowed, no plural), weak (n-declension),
#        open (can be opened), fix (can be repaired), visit (can be visited),
#        build (can be built), loc (can be a location "in/behind ..."),
#        dest (can be a destination "to the ..."), cost (has a price)
N = []


def noun(en, en_pl, de, de_pl, g, cats, flags=""):
    N.append(dict(en=en, en_pl=en_pl, de=de, de_pl=de_pl, g=g,
                  cats=set(cats.split()), flags=set(flags.split())))


# animals
noun("dog", "dogs", "Hund", "Hunde", "m", "animal", "cost")
noun("cat", "cats", "Katze", "Katzen", "f", "animal", "cost")
noun("horse", "horses", "Pferd", "Pferde", "n", "animal", "cost")
noun("bird", "birds", "Vogel", "Vögel", "m", "animal", "")
noun("fish", "fish", "Fisch", "Fische", "m", "animal food", "cost")
noun("mouse", "mice", "Maus", "Mäuse", "f", "animal", "")
# food
noun("apple", "apples", "Apfel", "Äpfel", "m", "food", "cost")
noun("cake", "cakes", "Kuchen", "Kuchen", "m", "food", "cost")
noun("bread", "breads", "Brot", "Brote", "n", "food", "mass cost noindef")
noun("soup", "soups", "Suppe", "Suppen", "f", "food", "cost")
noun("egg", "eggs", "Ei", "Eier", "n", "food", "cost")
noun("banana", "bananas", "Banane", "Bananen", "f", "food", "cost")
noun("cheese", "cheeses", "Käse", "Käse", "m", "food", "mass cost noindef")
noun("pizza", "pizzas", "Pizza", "Pizzen", "f", "food", "cost")
noun("sandwich", "sandwiches", "Sandwich", "Sandwiches", "n", "food", "cost")
noun("salad", "salads", "Salat", "Salate", "m", "food", "cost")
# drinks
noun("coffee", "coffees", "Kaffee", "Kaffees", "m", "drink", "mass cost")
noun("tea", "teas", "Tee", "Tees", "m", "drink", "mass cost")
noun("milk", "milks", "Milch", "Milch", "f", "drink", "mass cost noindef")
noun("water", "waters", "Wasser", "Wasser", "n", "drink", "mass noindef")
noun("beer", "beers", "Bier", "Biere", "n", "drink", "mass cost")
noun("wine", "wines", "Wein", "Weine", "m", "drink", "mass cost")
noun("juice", "juices", "Saft", "Säfte", "m", "drink", "mass cost")
# things
noun("key", "keys", "Schlüssel", "Schlüssel", "m", "thing", "")
noun("book", "books", "Buch", "Bücher", "n", "thing doc", "open cost")
noun("bag", "bags", "Tasche", "Taschen", "f", "thing", "open cost")
noun("umbrella", "umbrellas", "Regenschirm", "Regenschirme", "m", "thing", "open cost")
noun("lamp", "lamps", "Lampe", "Lampen", "f", "thing", "fix cost")
noun("chair", "chairs", "Stuhl", "Stühle", "m", "thing", "fix build cost")
noun("table", "tables", "Tisch", "Tische", "m", "thing", "fix build cost")
noun("phone", "phones", "Telefon", "Telefone", "n", "thing", "fix cost")
noun("computer", "computers", "Computer", "Computer", "m", "thing", "fix cost")
noun("picture", "pictures", "Bild", "Bilder", "n", "thing", "cost")
noun("bottle", "bottles", "Flasche", "Flaschen", "f", "thing", "open")
noun("clock", "clocks", "Uhr", "Uhren", "f", "thing", "fix cost")
noun("door", "doors", "Tür", "Türen", "f", "thing", "open fix")
noun("window", "windows", "Fenster", "Fenster", "n", "thing", "open fix")
noun("box", "boxes", "Kiste", "Kisten", "f", "thing", "open build")
noun("ticket", "tickets", "Fahrkarte", "Fahrkarten", "f", "thing", "cost")
noun("cup", "cups", "Tasse", "Tassen", "f", "thing", "cost")
noun("pen", "pens", "Stift", "Stifte", "m", "thing", "cost")
noun("ball", "balls", "Ball", "Bälle", "m", "thing", "cost")
noun("radio", "radios", "Radio", "Radios", "n", "thing", "fix cost")
# clothes
noun("shirt", "shirts", "Hemd", "Hemden", "n", "clothes", "cost")
noun("T-shirt", "T-shirts", "T-Shirt", "T-Shirts", "n", "clothes", "cost")
noun("shoe", "shoes", "Schuh", "Schuhe", "m", "clothes", "cost")
noun("jacket", "jackets", "Jacke", "Jacken", "f", "clothes", "cost")
noun("hat", "hats", "Hut", "Hüte", "m", "clothes", "cost")
noun("dress", "dresses", "Kleid", "Kleider", "n", "clothes", "cost")
# documents
noun("newspaper", "newspapers", "Zeitung", "Zeitungen", "f", "doc thing", "open cost")
noun("letter", "letters", "Brief", "Briefe", "m", "doc", "open")
noun("e-mail", "e-mails", "E-Mail", "E-Mails", "f", "doc", "open")
noun("report", "reports", "Bericht", "Berichte", "m", "doc", "")
noun("story", "stories", "Geschichte", "Geschichten", "f", "doc", "")
noun("map", "maps", "Karte", "Karten", "f", "doc thing", "open cost")
noun("magazine", "magazines", "Zeitschrift", "Zeitschriften", "f", "doc thing", "cost")
noun("song", "songs", "Lied", "Lieder", "n", "song", "")
# vehicles
noun("car", "cars", "Auto", "Autos", "n", "vehicle", "fix cost")
noun("bike", "bikes", "Fahrrad", "Fahrräder", "n", "vehicle", "fix cost")
noun("bus", "buses", "Bus", "Busse", "m", "vehicle", "")
noun("train", "trains", "Zug", "Züge", "m", "vehicle", "")
noun("boat", "boats", "Boot", "Boote", "n", "vehicle", "fix build cost")
noun("truck", "trucks", "Lastwagen", "Lastwagen", "m", "vehicle", "fix cost")
noun("subway", "subways", "U-Bahn", "U-Bahnen", "f", "vehicle", "")
# places / buildings
noun("house", "houses", "Haus", "Häuser", "n", "place", "visit build loc cost")
noun("school", "schools", "Schule", "Schulen", "f", "place", "build loc dest")
noun("station", "stations", "Bahnhof", "Bahnhöfe", "m", "place", "build loc dest")
noun("museum", "museums", "Museum", "Museen", "n", "place", "visit build loc dest")
noun("church", "churches", "Kirche", "Kirchen", "f", "place", "visit build loc dest")
noun("bridge", "bridges", "Brücke", "Brücken", "f", "place", "build dest")
noun("hotel", "hotels", "Hotel", "Hotels", "n", "place", "visit build loc dest cost")
noun("shop", "shops", "Laden", "Läden", "m", "place", "loc dest cost")
noun("library", "libraries", "Bibliothek", "Bibliotheken", "f", "place", "visit build loc dest")
noun("restaurant", "restaurants", "Restaurant", "Restaurants", "n", "place", "visit loc dest")
noun("garden", "gardens", "Garten", "Gärten", "m", "place", "loc")
noun("kitchen", "kitchens", "Küche", "Küchen", "f", "place", "loc")
noun("office", "offices", "Büro", "Büros", "n", "place", "loc dest")
noun("park", "parks", "Park", "Parks", "m", "place", "visit loc dest")
noun("city", "cities", "Stadt", "Städte", "f", "place", "visit")
noun("village", "villages", "Dorf", "Dörfer", "n", "place", "visit")
noun("hospital", "hospitals", "Krankenhaus", "Krankenhäuser", "n", "place", "build loc dest")
noun("bank", "banks", "Bank", "Banken", "f", "place", "loc dest")
noun("airport", "airports", "Flughafen", "Flughäfen", "m", "place", "build loc dest")
noun("market", "markets", "Markt", "Märkte", "m", "place", "visit dest")
noun("castle", "castles", "Schloss", "Schlösser", "n", "place", "visit build loc")
# people
noun("teacher", "teachers", "Lehrer", "Lehrer", "m", "person", "")
noun("doctor", "doctors", "Arzt", "Ärzte", "m", "person", "dest")
noun("woman", "women", "Frau", "Frauen", "f", "person", "")
noun("man", "men", "Mann", "Männer", "m", "person", "")
noun("child", "children", "Kind", "Kinder", "n", "person", "")
noun("girl", "girls", "Mädchen", "Mädchen", "n", "person", "")
noun("boy", "boys", "Junge", "Jungen", "m", "person", "weak")
noun("student", "students", "Student", "Studenten", "m", "person", "weak")
noun("neighbor", "neighbors", "Nachbar", "Nachbarn", "m", "person", "weak")
noun("friend", "friends", "Freund", "Freunde", "m", "person", "")
noun("mother", "mothers", "Mutter", "Mütter", "f", "person", "")
noun("father", "fathers", "Vater", "Väter", "m", "person", "")
noun("sister", "sisters", "Schwester", "Schwestern", "f", "person", "")
noun("brother", "brothers", "Bruder", "Brüder", "m", "person", "")
noun("baker", "bakers", "Bäcker", "Bäcker", "m", "person", "")
noun("driver", "drivers", "Fahrer", "Fahrer", "m", "person", "")
noun("cook", "cooks", "Koch", "Köche", "m", "person", "")
noun("waiter", "waiters", "Kellner", "Kellner", "m", "person", "")
noun("farmer", "farmers", "Bauer", "Bauern", "m", "person", "weak")
noun("grandmother", "grandmothers", "Großmutter", "Großmütter", "f", "person", "")
noun("boss", "bosses", "Chef", "Chefs", "m", "person", "")

NOUN_BY_EN = {n["en"]: n for n in N}

# Adjectives: en, de predicative, de attributive stem, noun categories
A = []


def adj(en, de, cats, attr=None):
    A.append(dict(en=en, de=de, attr=attr or de, cats=set(cats.split())))


ALL = "animal food drink thing clothes doc vehicle place person song"
adj("big", "groß", "animal thing vehicle place person clothes")
adj("small", "klein", "animal thing vehicle place person clothes food")
adj("old", "alt", "animal thing vehicle place person clothes doc")
adj("new", "neu", "thing vehicle place clothes doc song")
adj("young", "jung", "animal person")
adj("red", "rot", "thing vehicle clothes food")
adj("blue", "blau", "thing vehicle clothes")
adj("green", "grün", "thing vehicle clothes food")
adj("black", "schwarz", "animal thing vehicle clothes")
adj("white", "weiß", "animal thing vehicle clothes place")
adj("beautiful", "schön", "animal thing vehicle place clothes song")
adj("cheap", "billig", "thing vehicle clothes food drink")
adj("expensive", "teuer", "thing vehicle clothes food drink place", attr="teur")
adj("fast", "schnell", "animal vehicle")
adj("slow", "langsam", "animal vehicle")
adj("heavy", "schwer", "thing")
adj("empty", "leer", "thing place")
adj("clean", "sauber", "thing vehicle clothes place")
adj("dirty", "schmutzig", "thing vehicle clothes place animal")
adj("hot", "heiß", "drink food")
adj("cold", "kalt", "drink food")
adj("fresh", "frisch", "food drink")
adj("tired", "müde", "animal person", attr="müd")
adj("happy", "glücklich", "animal person")
adj("hungry", "hungrig", "animal person")
adj("friendly", "freundlich", "animal person")
adj("well-known", "bekannt", "place person song doc")
adj("old-fashioned", "altmodisch", "thing clothes place person")
adj("brand-new", "nagelneu", "thing vehicle clothes")
adj("second-hand", "gebraucht", "thing vehicle clothes")
adj("ice-cold", "eiskalt", "drink")
adj("interesting", "interessant", "doc place person song")
adj("long", "lang", "doc song")
adj("short", "kurz", "doc song")
adj("good", "gut", "food drink doc song thing")
adj("famous", "berühmt", "place person song")
adj("modern", "modern", "place thing vehicle")
adj("quiet", "ruhig", "place person animal")
adj("dark", "dunkel", "place clothes", attr="dunkl")
adj("sad", "traurig", "person song")

# Transitive verbs.
# en: base, 3sg, past, ing ; de: infinitive, present [1s,2s,3s,1p,3p] (None =
# regular), participle, imperative (du) ; object categories / flags ; case
V = []


def verb(en, de, pres, part, imp, objs, case="acc", prog=True, flags=""):
    base, s3, past, ing = en
    V.append(dict(base=base, s3=s3, past=past, ing=ing, inf=de, pres=pres,
                  part=part, imp=imp, objs=objs, case=case, prog=prog,
                  flags=set(flags.split())))


def reg(inf):
    """Regular German present tense."""
    stem = inf[:-2] if inf.endswith("en") else inf[:-1]
    if stem.endswith(("d", "t")) or (stem.endswith(("n", "m")) and stem[-2] not in "aeiouhlrmn"):
        du, er = stem + "est", stem + "et"
    elif stem.endswith(("s", "ß", "z", "x")):
        du, er = stem + "t", stem + "t"
    else:
        du, er = stem + "st", stem + "t"
    return [stem + "e", du, er, inf, inf]


OBJ_ALL = "animal thing vehicle place person clothes doc food"
verb(("see", "sees", "saw", "seeing"), "sehen", ["sehe", "siehst", "sieht", "sehen", "sehen"], "gesehen", "sieh", OBJ_ALL, prog=False)
verb(("buy", "buys", "bought", "buying"), "kaufen", None, "gekauft", "kauf", "food drink thing clothes vehicle +cost")
verb(("read", "reads", "read", "reading"), "lesen", ["lese", "liest", "liest", "lesen", "lesen"], "gelesen", "lies", "doc")
verb(("eat", "eats", "ate", "eating"), "essen", ["esse", "isst", "isst", "essen", "essen"], "gegessen", "iss", "food")
verb(("drink", "drinks", "drank", "drinking"), "trinken", None, "getrunken", "trink", "drink")
verb(("write", "writes", "wrote", "writing"), "schreiben", None, "geschrieben", "schreib", "doc song -book -newspaper -map -magazine")
verb(("open", "opens", "opened", "opening"), "öffnen", None, "geöffnet", "öffne", "+open")
verb(("carry", "carries", "carried", "carrying"), "tragen", ["trage", "trägst", "trägt", "tragen", "tragen"], "getragen", "trag", "thing -door -window -clock")
verb(("wear", "wears", "wore", "wearing"), "tragen", ["trage", "trägst", "trägt", "tragen", "tragen"], "getragen", "trag", "clothes")
verb(("sell", "sells", "sold", "selling"), "verkaufen", None, "verkauft", "verkauf", "thing vehicle clothes food +cost")
verb(("visit", "visits", "visited", "visiting"), "besuchen", None, "besucht", "besuch", "person +visit")
verb(("build", "builds", "built", "building"), "bauen", None, "gebaut", "bau", "+build")
verb(("clean", "cleans", "cleaned", "cleaning"), "putzen", None, "geputzt", "putz", "thing vehicle +loc -book -newspaper -map -magazine")
verb(("paint", "paints", "painted", "painting"), "malen", None, "gemalt", "mal", "animal person place vehicle")
verb(("bring", "brings", "brought", "bringing"), "bringen", None, "gebracht", "bring", "thing food drink doc clothes")
verb(("order", "orders", "ordered", "ordering"), "bestellen", None, "bestellt", "bestell", "food drink vehicle")
verb(("repair", "repairs", "repaired", "repairing"), "reparieren", None, "repariert", "reparier", "+fix")
verb(("forget", "forgets", "forgot", "forgetting"), "vergessen", ["vergesse", "vergisst", "vergisst", "vergessen", "vergessen"], "vergessen", "neg:vergiss", "thing doc clothes")
verb(("take", "takes", "took", "taking"), "nehmen", ["nehme", "nimmst", "nimmt", "nehmen", "nehmen"], "genommen", "nimm", "thing food vehicle clothes")
verb(("have", "has", "had", "having"), "haben", ["habe", "hast", "hat", "haben", "haben"], "gehabt", None, "animal thing vehicle clothes", prog=False, flags="nomodal")
verb(("find", "finds", "found", "finding"), "finden", None, "gefunden", None, "thing animal doc clothes")
verb(("need", "needs", "needed", "needing"), "brauchen", None, "gebraucht", None, "thing vehicle food drink doc clothes", prog=False, flags="nomodal")
verb(("like", "likes", "liked", "liking"), "mögen", ["mag", "magst", "mag", "mögen", "mögen"], "gemocht", None, "animal person food drink thing vehicle song", prog=False, flags="nomodal")
verb(("meet", "meets", "met", "meeting"), "treffen", ["treffe", "triffst", "trifft", "treffen", "treffen"], "getroffen", None, "person")
verb(("help", "helps", "helped", "helping"), "helfen", ["helfe", "hilfst", "hilft", "helfen", "helfen"], "geholfen", "hilf", "person", case="dat")
verb(("wash", "washes", "washed", "washing"), "waschen", ["wasche", "wäschst", "wäscht", "waschen", "waschen"], "gewaschen", "wasch", "vehicle clothes animal -bus -train -subway -bird -fish -mouse")
verb(("cook", "cooks", "cooked", "cooking"), "kochen", None, "gekocht", "koch", "food -apple -banana -cake -bread")
verb(("lose", "loses", "lost", "losing"), "verlieren", None, "verloren", "neg:verlier", "thing doc clothes -door -window -table")
verb(("look for", "looks for", "looked for", "looking for"), "suchen", None, "gesucht", "such", "thing animal person doc clothes")
verb(("know", "knows", "knew", "knowing"), "kennen", None, "gekannt", None, "person song +visit", prog=False, flags="nomodal")
verb(("love", "loves", "loved", "loving"), "lieben", None, "geliebt", None, "person animal", prog=False, flags="nomodal")
verb(("hear", "hears", "heard", "hearing"), "hören", None, "gehört", None, "song animal", prog=False)
verb(("sing", "sings", "sang", "singing"), "singen", None, "gesungen", "sing", "song")
verb(("drive", "drives", "drove", "driving"), "fahren", ["fahre", "fährst", "fährt", "fahren", "fahren"], "gefahren", "fahr", "vehicle -train -subway -bike")
verb(("call", "calls", "called", "calling"), "anrufen", ["rufe|an", "rufst|an", "ruft|an", "rufen|an", "rufen|an"], "angerufen", "ruf|an", "person")

for v in V:
    if v["pres"] is None:
        v["pres"] = reg(v["inf"])

# Intransitive verbs: en forms, de inf, present, participle, aux, kinds
# kinds: loc (takes a location), dest (takes a destination), city (goes to a city)
IV = []


def iverb(en, de, pres, part, aux, kinds, gern=True, imp=None):
    base, s3, past, ing = en
    IV.append(dict(base=base, s3=s3, past=past, ing=ing, inf=de,
                   pres=pres or reg(de), part=part, aux=aux,
                   kinds=set(kinds.split()), gern=gern, imp=imp))


iverb(("go", "goes", "went", "going"), "gehen", None, "gegangen", "sein", "dest home", gern=False, imp="geh")
iverb(("drive", "drives", "drove", "driving"), "fahren", ["fahre", "fährst", "fährt", "fahren", "fahren"], "gefahren", "sein", "dest city home", gern=True, imp="fahr")
iverb(("come", "comes", "came", "coming"), "kommen", None, "gekommen", "sein", "dest home", gern=False, imp="komm")
iverb(("walk", "walks", "walked", "walking"), "laufen", ["laufe", "läufst", "läuft", "laufen", "laufen"], "gelaufen", "sein", "dest home loc animal")
iverb(("fly", "flies", "flew", "flying"), "fliegen", None, "geflogen", "sein", "city")
iverb(("travel", "travels", "traveled", "traveling"), "reisen", None, "gereist", "sein", "city")
iverb(("work", "works", "worked", "working"), "arbeiten", None, "gearbeitet", "haben", "loc")
iverb(("sleep", "sleeps", "slept", "sleeping"), "schlafen", ["schlafe", "schläfst", "schläft", "schlafen", "schlafen"], "geschlafen", "haben", "loc animal")
iverb(("play", "plays", "played", "playing"), "spielen", None, "gespielt", "haben", "loc animal")
iverb(("read", "reads", "read", "reading"), "lesen", ["lese", "liest", "liest", "lesen", "lesen"], "gelesen", "haben", "loc")
iverb(("cook", "cooks", "cooked", "cooking"), "kochen", None, "gekocht", "haben", "loc")
iverb(("dance", "dances", "danced", "dancing"), "tanzen", None, "getanzt", "haben", "loc")
iverb(("sing", "sings", "sang", "singing"), "singen", None, "gesungen", "haben", "loc")
iverb(("swim", "swims", "swam", "swimming"), "schwimmen", None, "geschwommen", "sein", " animal")
iverb(("live", "lives", "lived", "living"), "wohnen", None, "gewohnt", "haben", "loc incity", gern=True)
iverb(("stay", "stays", "stayed", "staying"), "bleiben", None, "geblieben", "sein", "loc home_loc", gern=False)
iverb(("wait", "waits", "waited", "waiting"), "warten", None, "gewartet", "haben", "loc wait animal", gern=False, imp="warte")
iverb(("laugh", "laughs", "laughed", "laughing"), "lachen", None, "gelacht", "haben", "", gern=True)
iverb(("eat", "eats", "ate", "eating"), "essen", ["esse", "isst", "isst", "essen", "essen"], "gegessen", "haben", "loc animal")

AUX = {
    "haben": ["habe", "hast", "hat", "haben", "haben"],
    "sein": ["bin", "bist", "ist", "sind", "sind"],
    "werden": ["werde", "wirst", "wird", "werden", "werden"],
}
SEIN_PAST = ["war", "warst", "war", "waren", "waren"]
MODALS = {
    # en present (aff, neg-contracted, neg-full), en past ; de pres ; de past
    "can": dict(de=["kann", "kannst", "kann", "können", "können"],
                de_past=["konnte", "konntest", "konnte", "konnten", "konnten"]),
    "want": dict(de=["will", "willst", "will", "wollen", "wollen"],
                 de_past=["wollte", "wolltest", "wollte", "wollten", "wollten"]),
    "must": dict(de=["muss", "musst", "muss", "müssen", "müssen"],
                 de_past=["musste", "musstest", "musste", "mussten", "mussten"]),
    "would_like": dict(de=["möchte", "möchtest", "möchte", "möchten", "möchten"],
                       de_past=None),
}

NUM_WORDS = [None, "one", "two", "three", "four", "five", "six", "seven",
             "eight", "nine", "ten", "eleven", "twelve"]
NUM_DE = [None, "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben",
          "acht", "neun", "zehn", "elf", "zwölf"]

# time expressions: en, de, allowed tenses (p=present, d=past, f=future)
TIMES = [
    ("today", "heute", "pdf"), ("tomorrow", "morgen", "f"),
    ("yesterday", "gestern", "d"), ("now", "jetzt", "p"),
    ("every day", "jeden Tag", "p"), ("in the morning", "am Morgen", "pf"),
    ("in the evening", "am Abend", "pf"), ("at the weekend", "am Wochenende", "pdf"),
    ("last week", "letzte Woche", "d"), ("next week", "nächste Woche", "f"),
    ("last year", "letztes Jahr", "d"), ("next year", "nächstes Jahr", "f"),
    ("this morning", "heute Morgen", "d"), ("tonight", "heute Abend", "f"),
    ("soon", "bald", "f"), ("later", "später", "f"),
    ("on Monday", "am Montag", "pdf"), ("on Tuesday", "am Dienstag", "pdf"),
    ("on Wednesday", "am Mittwoch", "pdf"), ("on Thursday", "am Donnerstag", "pdf"),
    ("on Friday", "am Freitag", "pdf"), ("on Saturday", "am Samstag", "pdf"),
    ("on Sunday", "am Sonntag", "pdf"),
]

FREQ_ADVS = [("always", "immer"), ("often", "oft"), ("usually", "meistens"),
             ("sometimes", "manchmal")]

# ---------------------------------------------------------------------------
# German declension
# ---------------------------------------------------------------------------

GI = {"m": 0, "f": 1, "n": 2, "pl": 3}
DEF_ART = {"nom": ["der", "die", "das", "die"], "acc": ["den", "die", "das", "die"],
           "dat": ["dem", "der", "dem", "den"]}
DER_END = {"nom": ["er", "e", "es", "e"], "acc": ["en", "e", "es", "e"],
           "dat": ["em", "er", "em", "en"]}
EIN_END = {"nom": ["", "e", "", "e"], "acc": ["en", "e", "", "e"],
           "dat": ["em", "er", "em", "en"]}
WEAK_ADJ = {"nom": ["e", "e", "e", "en"], "acc": ["en", "e", "e", "en"],
            "dat": ["en", "en", "en", "en"]}
MIXED_ADJ = {"nom": ["er", "e", "es", "en"], "acc": ["en", "e", "es", "en"],
             "dat": ["en", "en", "en", "en"]}
STRONG_ADJ = {"nom": ["er", "e", "es", "e"], "acc": ["en", "e", "es", "e"],
              "dat": ["em", "er", "em", "en"]}

POSS = [("my", "mein"), ("your", "dein"), ("his", "sein"), ("her", "ihr"),
        ("our", "unser"), ("their", "ihr")]


def de_noun_form(n, case, plural):
    if plural:
        w = n["de_pl"]
        if case == "dat" and not w.endswith(("n", "s")):
            w += "n"
        return w
    if "weak" in n["flags"] and case != "nom":
        return n["de_pl"] if n["de_pl"].endswith("n") else n["de"] + "n"
    return n["de"]


def poss_end(stem, ending):
    # unser + e -> unsere ; unser + en -> unseren
    return stem + ending


class NP:
    """A noun phrase with its English surface and German case forms."""

    def __init__(self, en, de, person, kind, de_kein=None, pron=False,
                 noun=None, plural=False):
        self.en = en              # English (object form for pronouns: see en_obj)
        self.de = de              # dict case -> German
        self.person = person
        self.kind = kind          # def indef bare num poss name gen pron this coord
        self.de_kein = de_kein    # dict case -> German with kein (negation)
        self.pron = pron
        self.noun = noun
        self.plural = plural
        self.en_obj = en
        self.pidx = None


def an(word):
    w = word.lower()
    if w.startswith(("uni", "use", "eu")):
        return "a"
    return "an" if w[0] in "aeiou" else "a"


def fmt_int_en(n):
    return f"{n:,}"


def fmt_int_de(n):
    return f"{n:,}".replace(",", ".")


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    # -- helpers -----------------------------------------------------------
    def p(self, x):
        return self.r.random() < x

    def ch(self, seq):
        return self.r.choice(seq)

    def pick_noun(self, cats=None, flags_any=None, exclude=(), need_plural=False, may_fail=False):
        cand = []
        for n in N:
            if n["en"] in exclude:
                continue
            if need_plural and "mass" in n["flags"] and n["cats"] & {"drink"}:
                continue
            ok = False
            if cats and n["cats"] & cats:
                ok = True
            if flags_any and n["flags"] & flags_any:
                ok = True
            if ok:
                cand.append(n)
        if not cand and may_fail:
            return None
        return self.ch(cand)

    def objspec_nouns(self, spec):
        cats, flags, excl = set(), set(), set()
        for t in spec.split():
            if t.startswith("+"):
                flags.add(t[1:])
            elif t.startswith("-"):
                excl.add(t[1:])
            else:
                cats.add(t)
        return cats, flags, excl

    def pick_adj(self, n, p=0.35):
        if not self.p(p):
            return None
        cand = [a for a in A if a["cats"] & n["cats"]]
        if not cand:
            return None
        a = self.ch(cand)
        if self.p(0.08):
            return dict(a, en="very " + a["en"], intens="sehr ")
        return a

    # -- noun phrases --------------------------------------------------------
    def np_noun(self, n, det, plural=False, a=None, poss=None, num=None, name=None):
        """Build an NP for noun n with determiner type det."""
        gi = 3 if plural else GI[n["g"]]
        en_n = n["en_pl"] if plural else n["en"]
        en_a = (a["en"] + " ") if a else ""
        de = {}
        de_kein = None
        intens = a.get("intens", "") if a else ""

        def adjf(table, case):
            return (intens + a["attr"] + table[case][gi] + " ") if a else ""

        if det == "def":
            en = f"the {en_a}{en_n}"
            for c in ("nom", "acc", "dat"):
                de[c] = f"{DEF_ART[c][gi]} {adjf(WEAK_ADJ, c)}{de_noun_form(n, c, plural)}"
        elif det == "this":
            en = f"{'these' if plural else 'this'} {en_a}{en_n}"
            for c in ("nom", "acc", "dat"):
                de[c] = f"dies{DER_END[c][gi]} {adjf(WEAK_ADJ, c)}{de_noun_form(n, c, plural)}"
        elif det == "indef":
            en = f"{an(a['en'] if a else en_n)} {en_a}{en_n}"
            de_kein = {}
            for c in ("nom", "acc", "dat"):
                de[c] = f"ein{EIN_END[c][gi]} {adjf(MIXED_ADJ, c)}{de_noun_form(n, c, False)}"
                de_kein[c] = f"kein{EIN_END[c][gi]} {adjf(MIXED_ADJ, c)}{de_noun_form(n, c, False)}"
        elif det == "bare":
            en = f"{en_a}{en_n}"
            de_kein = {}
            for c in ("nom", "acc", "dat"):
                de[c] = f"{adjf(STRONG_ADJ, c)}{de_noun_form(n, c, plural)}"
                de_kein[c] = f"kein{EIN_END[c][gi]} {adjf(MIXED_ADJ if not plural else WEAK_ADJ, c)}{de_noun_form(n, c, plural)}"
        elif det == "poss":
            en_p, de_p = poss
            en = f"{en_p} {en_a}{en_n}"
            for c in ("nom", "acc", "dat"):
                de[c] = f"{poss_end(de_p, EIN_END[c][gi])} {adjf(MIXED_ADJ, c)}{de_noun_form(n, c, plural)}"
        elif det == "gen":  # Anna's dog -> Annas Hund
            en = f"{name}'s {en_a}{en_n}"
            for c in ("nom", "acc", "dat"):
                de[c] = f"{name}s {adjf(STRONG_ADJ, c)}{de_noun_form(n, c, plural)}"
        elif det == "num":
            en_num, de_num = num
            en = f"{en_num} {en_a}{en_n}"
            for c in ("nom", "acc", "dat"):
                de[c] = f"{de_num} {adjf(STRONG_ADJ, c)}{de_noun_form(n, c, True)}"
        else:
            raise ValueError(det)
        person = P3P if plural or det == "num" else P3S
        return NP(en, de, person, det, de_kein=de_kein, noun=n, plural=plural or det == "num")

    def rand_number(self):
        r = self.r.random()
        if r < 0.7:
            k = self.r.randint(2, 12)
            return NUM_WORDS[k], NUM_DE[k]
        if r < 0.93:
            k = self.r.randint(13, 99)
            return str(k), str(k)
        k = self.ch([100, 150, 200, 250, 300, 500, 1000, 1500, 2000, 5000, 10000])
        return fmt_int_en(k), fmt_int_de(k)

    def np_for(self, n, allow=("def", "indef", "poss", "this", "bare", "num", "gen"),
               weights=None, adj_p=0.35):
        """Random determiner for noun n (subject or object)."""
        mass = "mass" in n["flags"]
        opts = []
        w = weights or {"def": 5, "indef": 3, "poss": 3, "this": 1, "bare": 1.5,
                        "num": 1.2, "gen": 0.8, "defpl": 1.5, "posspl": 0.7}
        for d in allow:
            if d == "bare" and not mass and "bare" in allow:
                opts.append(("barepl", w.get("bare", 1)))
                continue
            if d == "num" and mass:
                continue
            if d == "indef" and "noindef" in n["flags"]:
                continue
            opts.append((d, w.get(d, 1)))
        if "def" in allow and not mass:
            opts.append(("defpl", w.get("defpl", 1)))
        if "poss" in allow and not mass:
            opts.append(("posspl", w.get("posspl", 1)))
        tot = sum(x for _, x in opts)
        r = self.r.random() * tot
        for d, x in opts:
            r -= x
            if r <= 0:
                break
        a = self.pick_adj(n, adj_p)
        if d == "def":
            return self.np_noun(n, "def", False, a)
        if d == "defpl":
            return self.np_noun(n, "def", True, a)
        if d == "this":
            return self.np_noun(n, "this", self.p(0.3) and not mass, a)
        if d == "indef":
            return self.np_noun(n, "indef", False, a)
        if d == "bare":
            return self.np_noun(n, "bare", False, a)
        if d == "barepl":
            return self.np_noun(n, "bare", True, a)
        if d == "poss":
            return self.np_noun(n, "poss", False, a, poss=self.ch(POSS))
        if d == "posspl":
            return self.np_noun(n, "poss", True, a, poss=self.ch(POSS))
        if d == "num":
            return self.np_noun(n, "num", True, a, num=self.rand_number())
        if d == "gen":
            nm = self.ch([x for x in NAMES if not x.endswith(("s", "x", "z"))])
            return self.np_noun(n, "gen", self.p(0.2) and not mass, a, name=nm)
        raise AssertionError(d)

    def subject(self, allow_things=False, pron_p=0.45, name_p=0.2, animals=False):
        r = self.r.random()
        if r < pron_p:
            k = self.r.randrange(len(PRONOUNS))
            en, de, person, *_ = PRONOUNS[k]
            np = NP(en, {"nom": de}, person, "pron", pron=True)
            np.pidx = k
            return np
        if r < pron_p + name_p:
            nm = self.ch(NAMES)
            return NP(nm, {"nom": nm, "acc": nm, "dat": nm}, P3S, "name")
        if allow_things and self.p(0.5):
            n = self.pick_noun(cats={"animal", "thing", "vehicle", "place", "clothes", "food", "drink", "doc"})
        else:
            n = self.pick_noun(cats={"person", "animal"} if animals and self.p(0.3) else {"person"})
        return self.np_for(n, allow=("def", "poss", "this", "gen"), adj_p=0.25)

    def obj_np(self, v):
        """Object NP for transitive verb v."""
        cats, flags, excl = self.objspec_nouns(v["objs"])
        person_ok = "person" in cats
        if person_ok and self.p(0.35):
            if self.p(0.55):
                k = self.r.randrange(len(PRONOUNS))
                en, _, _, en_o, de_a, de_d = PRONOUNS[k]
                np = NP(en_o, {"acc": de_a, "dat": de_d}, None, "pron", pron=True)
                np.pidx = k
                return np
            nm = self.ch(NAMES)
            return NP(nm, {"nom": nm, "acc": nm, "dat": nm}, P3S, "name")
        n = self.pick_noun(cats=cats, flags_any=flags, exclude=excl)
        if v["case"] == "dat":
            return self.np_for(n, allow=("def", "indef", "poss", "gen"))
        allow = ("def", "indef", "poss", "this", "bare", "num", "gen")
        np = self.np_for(n, allow=allow)
        # coordination: "bread and cheese" / "the dog and the cat"
        if self.p(0.05) and np.kind in ("def", "bare", "indef"):
            n2 = self.pick_noun(cats=cats, flags_any=flags, exclude=excl | {n["en"]}, may_fail=True)
            np2 = self.np_for(n2, allow=(np.kind,), adj_p=0.15) if n2 else None
            if np2 is not None and np2.kind == np.kind and np2.plural == np.plural:
                de = {c: f"{np.de[c]} und {np2.de[c]}" for c in np.de}
                return NP(f"{np.en} and {np2.en}", de, P3P, "coord", plural=True)
        return np

    # -- prepositional phrases -------------------------------------------------
    def location(self):
        """(en, de) location phrase, dative."""
        r = self.r.random()
        if r < 0.08:
            return ("at home", "zu Hause")
        if r < 0.13:
            return ("at work", "bei der Arbeit")
        if r < 0.22:
            c_en, c_de = self.ch(CITIES)
            return (f"in {c_en}", f"in {c_de}")
        n = self.pick_noun(flags_any={"loc"})
        a = self.pick_adj(n, 0.2)
        det = self.ch(["def", "def", "def", "poss", "gen"])
        if det == "poss":
            np = self.np_noun(n, "poss", False, a, poss=self.ch(POSS))
        elif det == "gen":
            nm = self.ch([x for x in NAMES if not x.endswith(("s", "x", "z"))])
            np = self.np_noun(n, "gen", False, a, name=nm)
        else:
            np = self.np_noun(n, "def", False, a)
        prep = self.ch([("in", "in")] * 5 + [("behind", "hinter"), ("in front of", "vor"), ("next to", "neben")])
        de = np.de["dat"]
        if det == "def" and n["g"] in "mn":
            if prep[1] == "in":
                return (f"{prep[0]} {np.en}", "im " + de.split(" ", 1)[1])
        return (f"{prep[0]} {np.en}", f"{prep[1]} {de}")

    def destination(self, kinds):
        opts = []
        if "dest" in kinds:
            opts += ["dest"] * 6
        if "city" in kinds:
            opts += ["city"] * 3
        if "home" in kinds:
            opts += ["home"]
        k = self.ch(opts)
        if k == "home":
            return ("home", "nach Hause")
        if k == "city":
            c_en, c_de = self.ch(CITIES)
            return (f"to {c_en}", f"nach {c_de}")
        if self.p(0.1):
            return ("to school", "zur Schule") if self.p(0.5) else ("to work", "zur Arbeit")
        n = self.pick_noun(flags_any={"dest"})
        a = self.pick_adj(n, 0.2)
        if self.p(0.2):
            np = self.np_noun(n, "poss", False, a, poss=self.ch(POSS))
            return (f"to {np.en}", f"zu {np.de['dat']}")
        np = self.np_noun(n, "def", False, a)
        rest = np.de["dat"].split(" ", 1)[1]
        return (f"to {np.en}", ("zum " if n["g"] in "mn" else "zur ") + rest)

    def time(self, tense):
        code = {"pres": "p", "past": "d", "fut": "f"}[tense]
        opts = [t for t in TIMES if code in t[2]]
        en, de, _ = self.ch(opts)
        return en, de

    def clock(self):
        h = self.r.randint(1, 12)
        if self.p(0.5):
            return f"at {h} o'clock", f"um {h} Uhr"
        m = self.ch(["00", "15", "30", "45", "05", "10", "20", "40", "50"])
        h = self.r.randint(5, 23)
        return f"at {h}:{m}", f"um {h}:{m} Uhr"


# ---------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------

class Clause:
    """One finite clause; renders to English/German declarative, yes/no
    question, wh-question body and subordinate order."""

    def __init__(self, g: Gen, subj: NP, tense="pres", neg=False, modal=None,
                 prog=False, contract=True):
        self.g = g
        self.subj = subj
        self.tense = tense
        self.neg = neg            # False | "not" | "never"
        self.modal = modal
        self.prog = prog
        self.contract = contract
        self.obj = None           # NP
        self.obj_case = "acc"
        self.pps = []             # list of (en, de)
        self.time = None          # (en, de)
        self.time_front = False
        self.freq = None          # (en, de)
        self.verb = None          # transitive / intransitive verb dict
        self.cop = None           # (en_pred, de_pred) for copula clauses
        self.gern = False         # "like to" -> gern
        self.de_particle = None   # separable particle

    # ---- English -----------------------------------------------------------
    def _be(self, person, neg, past=False):
        if past:
            f = "were" if person in (P2S, P1P, P3P) else "was"
        else:
            f = {P1S: "am", P2S: "are", P3S: "is", P1P: "are", P3P: "are"}[person]
        if neg:
            if self.contract and f != "am":
                return f + "n't"
            return f + " not"
        return f

    def en_parts(self):
        """Return (aux_for_question or None, verb_words_after_subject_in_question,
        declarative_verb_group)."""
        s3 = self.subj.person == P3S
        neg = self.neg == "not"
        never = self.neg == "never"
        c = self.contract
        if self.cop is not None:
            pred = self.cop[0]
            if self.tense == "fut":
                if neg:
                    return ("won't", ["be"], ["won't" if c else "will not", "be"], pred)
                if never:
                    return (None, None, ["will", "never", "be"], pred)
                return ("will", ["be"], ["will", "be"], pred)
            past = self.tense == "past"
            f = self._be(self.subj.person, False, past)
            decl = [self._be(self.subj.person, neg, past)]
            if never:
                decl = [f, "never"]
            elif self.freq:
                decl = [f, self.freq[0]]
            q_aux = f if not neg else self._be(self.subj.person, True, past).replace(" not", "n't")
            return (q_aux, [], decl, pred)
        v = self.verb
        gern = self.gern
        if self.modal:
            m = self.modal
            past = self.tense == "past"
            if m == "can":
                if past:
                    a, an_ = "could", "couldn't" if c else "could not"
                else:
                    a, an_ = "can", "can't" if c else "cannot"
                main = [v["base"]]
                if neg:
                    return ("couldn't" if past else "can't", main, [an_] + main, None)
                return (a, main, [a] + main, None)
            if m == "would_like":
                main = ["like", "to", v["base"]] if v else ["like"]
                return ("would", main, ["would"] + main, None)
            # want / must via do-support
            mv = {"want": ("want", "wants", "wanted"), "must": ("have", "has", "had")}[m]
            tail = ["to", v["base"]]
            if past:
                if neg:
                    return ("didn't", [mv[0]] + tail, ["didn't" if c else "did not", mv[0]] + tail, None)
                return ("did", [mv[0]] + tail, [mv[2]] + tail, None)
            do = "does" if s3 else "do"
            if neg:
                return (do + "n't", [mv[0]] + tail, [do + "n't" if c else do + " not", mv[0]] + tail, None)
            return (do, [mv[0]] + tail, [mv[1] if s3 else mv[0]] + tail, None)
        if gern:
            lv = ("like", "likes", "liked")
            tail = ["to", v["base"]]
            if self.tense == "past":
                if neg:
                    return ("didn't", [lv[0]] + tail, ["didn't" if c else "did not", lv[0]] + tail, None)
                return ("did", [lv[0]] + tail, [lv[2]] + tail, None)
            do = "does" if s3 else "do"
            if neg:
                return (do + "n't", [lv[0]] + tail, [do + "n't" if c else do + " not", lv[0]] + tail, None)
            return (do, [lv[0]] + tail, [lv[1] if s3 else lv[0]] + tail, None)
        if self.tense == "fut":
            if neg:
                return ("won't", [v["base"]], ["won't" if c else "will not", v["base"]], None)
            return ("will", [v["base"]], ["will", v["base"]], None)
        if self.tense == "past":
            if never:
                return (None, None, ["never", v["past"]], None)
            if neg:
                return ("didn't", [v["base"]], ["didn't" if c else "did not", v["base"]], None)
            pre = [self.freq[0]] if self.freq else []
            return ("did", [v["base"]], pre + [v["past"]], None)
        # present
        if self.prog:
            be_aff = self._be(self.subj.person, False)
            if neg:
                decl = self._be(self.subj.person, True)
                if self.subj.person == P1S and self.subj.pron:
                    decl = "am not"
                q = be_aff + "n't" if be_aff != "am" else None
                return (q, [v["ing"]], [decl, v["ing"]], None)
            return (be_aff, [v["ing"]], [be_aff, v["ing"]], None)
        do = "does" if s3 else "do"
        if never:
            return (None, None, ["never", v["s3"] if s3 else v["base"]], None)
        if neg:
            return (do + "n't", [v["base"]], [do + "n't" if c else do + " not", v["base"]], None)
        pre = [self.freq[0]] if self.freq else []
        return (do, [v["base"]], pre + [v["s3"] if s3 else v["base"]], None)

    def en_tail(self, drop_obj=False, with_time=True):
        t = []
        _, _, _, pred = self.en_parts()
        if pred:
            t.append(pred)
        if self.obj is not None and not drop_obj:
            t.append(self.obj.en_obj)
        for en, _ in self.pps:
            t.append(en)
        if self.time and with_time and not self.time_front:
            t.append(self.time[0])
        return t

    def en_decl(self):
        _, _, decl, _ = self.en_parts()
        subj = self.subj.en
        words = [subj] + decl + self.en_tail()
        s = " ".join(words)
        if self.subj.pron and self.contract and self.prog and self.neg != "not":
            s = s.replace("I am ", "I'm ", 1) if self.subj.en == "I" else s
        if self.subj.pron and self.contract and self.cop is not None and self.tense == "pres" and not self.neg:
            if self.subj.en == "I":
                s = s.replace("I am ", "I'm ", 1)
            elif self.subj.en in ("he", "she") and self.g.p(0.5):
                s = s.replace(f"{self.subj.en} is ", f"{self.subj.en}'s ", 1)
            elif self.subj.en in ("we", "they", "you") and self.g.p(0.5):
                s = s.replace(f"{self.subj.en} are ", f"{self.subj.en}'re ", 1)
        if self.time and self.time_front:
            s = f"{self.time[0][0].upper()}{self.time[0][1:]}, {s}"
        return s

    def en_question(self, drop_obj=False, wh=None):
        aux, rest, _, _ = self.en_parts()
        assert aux is not None
        words = [aux, self.subj.en if not (wh == "who") else ""] + rest + self.en_tail(drop_obj=drop_obj)
        return " ".join(w for w in words if w)

    # ---- German ------------------------------------------------------------
    def de_verb(self):
        """(finite, right bracket list)."""
        pi = self.subj.person
        if self.cop is not None:
            pred = self.cop[1]
            if self.tense == "fut":
                return AUX["werden"][pi], [pred, "sein"]
            if self.tense == "past":
                return SEIN_PAST[pi], [pred]
            return AUX["sein"][pi], [pred]
        v = self.verb
        if self.modal:
            m = MODALS[self.modal]
            fin = (m["de_past"] if self.tense == "past" else m["de"])[pi]
            return fin, ([v["inf"]] if v else [])
        if self.tense == "fut":
            return AUX["werden"][pi], [v["inf"]]
        if self.tense == "past":
            aux = v.get("aux", "haben")
            return AUX[aux][pi], [v["part"]]
        f = v["pres"][pi]
        if "|" in f:
            f, part = f.split("|")
            return f, [part]
        return f, []

    def de_middle(self):
        """German middle field (without subject)."""
        m = []
        obj = self.obj
        neg = self.neg
        if obj is not None and obj.pron:
            m.append(obj.de[self.obj_case])
        if self.freq and not neg:
            m.append(self.freq[1])
        if self.time and not self.time_front:
            m.append(self.time[1])
        if self.gern:
            m.append("nicht gern" if neg == "not" else "gern")
        used_neg = self.gern and neg == "not"
        if obj is not None and not obj.pron:
            if neg and not used_neg and obj.kind in ("indef", "bare"):
                if neg == "not":
                    m.append(obj.de_kein[self.obj_case])
                else:
                    m.append("nie")
                    m.append(obj.de[self.obj_case])
                used_neg = True
            else:
                m.append(obj.de[self.obj_case])
        if neg and not used_neg:
            m.append("nicht" if neg == "not" else "nie")
        for _, de in self.pps:
            m.append(de)
        return m

    def de_decl(self):
        fin, right = self.de_verb()
        mid = self.de_middle()
        if self.time and self.time_front:
            words = [self.time[1], fin, self.subj.de["nom"]] + mid + right
        else:
            words = [self.subj.de["nom"], fin] + mid + right
        return " ".join(words)

    def de_question(self):
        fin, right = self.de_verb()
        return " ".join([fin, self.subj.de["nom"]] + self.de_middle() + right)

    def de_sub(self):
        """Verb-final order: subject, middle field, right bracket, finite verb."""
        assert not self.time_front
        fin, right = self.de_verb()
        if self.de_verb_sep():
            # separable verb: particle joins the finite verb in final position
            right = []
            fin = self.de_verb_sep()
        return " ".join([self.subj.de["nom"]] + self.de_middle() + right + [fin])

    def de_verb_sep(self):
        if self.cop is None and self.verb is not None and not self.modal and self.tense == "pres":
            f = self.verb["pres"][self.subj.person]
            if "|" in f:
                a, b = f.split("|")
                return b + a
        return None


def cap(s):
    return s[0].upper() + s[1:] if s else s


# ---------------------------------------------------------------------------
# Sentence templates
# ---------------------------------------------------------------------------

class Templates:
    def __init__(self, g: Gen):
        self.g = g

    def rand_tense(self):
        r = self.g.r.random()
        return "pres" if r < 0.5 else ("past" if r < 0.8 else "fut")

    def trans_clause(self, subj=None, allow_time=True, allow_place=True,
                     tense=None, neg=None, question=False):
        g = self.g
        v = g.ch(V)
        subj = subj or g.subject()
        tense = tense or self.rand_tense()
        if neg is None:
            neg = "not" if g.p(0.25) else False
            if not neg and not question and g.p(0.05):
                neg = "never"
        modal = None
        if g.p(0.15) and not neg == "never" and "nomodal" not in v["flags"]:
            modal = g.ch(["can", "want", "must"])
            if tense == "fut":
                tense = "pres"
        if modal is None and g.p(0.04) and tense == "pres" and not neg and "nomodal" not in v["flags"]:
            modal = "would_like"
        prog = tense == "pres" and not modal and v["prog"] and neg != "never" and g.p(0.3)
        cl = Clause(g, subj, tense, neg, modal, prog, contract=g.p(0.75))
        cl.verb = v
        cl.obj_case = v["case"]
        cl.obj = g.obj_np(v)
        while cl.obj.pron and subj.pron and cl.obj.pidx == subj.pidx:
            cl.obj = g.obj_np(v)
        if neg and cl.obj.kind in ("num", "coord"):
            cl.neg = False
        if cl.neg == "never" and cl.obj.kind in ("num", "coord"):
            cl.neg = False
        if tense == "pres" and not prog and not modal and not cl.neg and not question and g.p(0.08):
            cl.freq = g.ch(FREQ_ADVS)
        if allow_place and not cl.neg and g.p(0.2):
            cl.pps.append(g.location())
        if allow_time and g.p(0.35) and not cl.freq:
            cl.time = g.time(tense)
            if not question and g.p(0.25):
                cl.time_front = True
        elif allow_time and tense != "pres" and g.p(0.3):
            cl.time = g.time(tense)
        return cl

    def intr_clause(self, subj=None, tense=None, neg=None, question=False):
        g = self.g
        v = g.ch(IV)
        subj = subj or g.subject(animals="animal" in v["kinds"])
        tense = tense or self.rand_tense()
        if neg is None:
            neg = "not" if g.p(0.2) else False
        modal = None
        if g.p(0.12):
            modal = g.ch(["can", "want", "must"])
            if tense == "fut":
                tense = "pres"
        gern = False
        if not modal and v["gern"] and tense != "fut" and g.p(0.2):
            gern = True
        prog = tense == "pres" and not modal and not gern and g.p(0.3)
        cl = Clause(g, subj, tense, neg, modal, prog, contract=g.p(0.75))
        cl.verb = v
        cl.gern = gern
        kinds = v["kinds"]
        if kinds & {"dest", "city", "home"} and g.p(0.85):
            cl.pps.append(g.destination(kinds))
        elif "wait" in kinds and g.p(0.5):
            n = g.pick_noun(cats={"vehicle", "person"}, exclude={"car", "bike", "truck", "boat"})
            np = g.np_for(n, allow=("def", "poss"), adj_p=0.15)
            cl.pps.append((f"for {np.en}", f"auf {np.de['acc']}"))
        elif "home_loc" in kinds and g.p(0.5):
            cl.pps.append(("at home", "zu Hause"))
        elif "loc" in kinds and g.p(0.6):
            cl.pps.append(g.location())
        elif "incity" in kinds:
            c_en, c_de = g.ch(CITIES)
            cl.pps.append((f"in {c_en}", f"in {c_de}"))
        if g.p(0.35):
            cl.time = g.time(tense)
            if not question and g.p(0.25):
                cl.time_front = True
        return cl

    def cop_clause(self, subj=None, tense=None, neg=None, question=False):
        g = self.g
        tense = tense or ("pres" if g.p(0.6) else ("past" if g.p(0.7) else "fut"))
        if subj is None:
            subj = g.subject(allow_things=True, pron_p=0.2, name_p=0.15, animals=True)
        if neg is None:
            neg = "not" if g.p(0.25) else False
            if not neg and not question and g.p(0.04):
                neg = "never"
        cl = Clause(g, subj, tense, neg, None, False, contract=g.p(0.75))
        n = subj.noun
        cats = n["cats"] if n else {"person"}
        if g.p(0.2) and "place" not in cats:
            # "The dog is in the garden": empty predicate, location in pps
            cl.cop = ("", "")
            cl.pps.append(g.location())
        else:
            a = g.ch([a for a in A if a["cats"] & cats])
            inten = g.r.random()
            if inten < 0.15:
                cl.cop = ("very " + a["en"], "sehr " + a["de"])
            elif inten < 0.22:
                cl.cop = ("too " + a["en"], "zu " + a["de"])
            else:
                cl.cop = (a["en"], a["de"])
        if not neg and tense == "pres" and not question and g.p(0.1):
            cl.freq = g.ch(FREQ_ADVS)
        if g.p(0.3) and not cl.freq:
            cl.time = g.time(tense)
            if not question and g.p(0.25):
                cl.time_front = True
        return cl

    # ---- sentence level -------------------------------------------------------
    def finish(self, en, de, punct="."):
        return cap(en) + punct, cap(de) + punct

    def s_decl(self):
        g = self.g
        r = g.r.random()
        cl = self.trans_clause() if r < 0.6 else (self.intr_clause() if r < 0.8 else self.cop_clause())
        return self.finish(fix_en(cl.en_decl()), fix_de(cl.de_decl()))

    def s_yesno(self):
        g = self.g
        r = g.r.random()
        if r < 0.6:
            cl = self.trans_clause(question=True, neg="not" if g.p(0.12) else False)
        elif r < 0.8:
            cl = self.intr_clause(question=True, neg="not" if g.p(0.1) else False)
        else:
            cl = self.cop_clause(question=True, neg="not" if g.p(0.1) else False)
        cl.time_front = False
        if cl.en_parts()[0] is None:
            cl.neg = False
        if cl.modal == "would_like" and cl.subj.person != P2S:
            cl.modal = None
        return self.finish(fix_en(cl.en_question()), fix_de(cl.de_question()), "?")

    def s_wh(self):
        g = self.g
        r = g.r.random()
        if r < 0.18:
            # Where is the key?
            n = g.pick_noun(cats={"thing", "animal", "person", "vehicle", "place", "clothes", "doc"})
            np = g.np_for(n, allow=("def", "poss", "gen"), adj_p=0.2)
            tense = "past" if g.p(0.2) else "pres"
            be = ("were" if np.plural else "was") if tense == "past" else ("are" if np.plural else "is")
            de_be = ("waren" if np.plural else "war") if tense == "past" else ("sind" if np.plural else "ist")
            pre_en, pre_de = ("", "")
            if g.p(0.15):
                pre_en, pre_de = ("Excuse me, ", "Entschuldigung, ")
            en = f"{pre_en}{'where' if pre_en else 'Where'} {be} {np.en}"
            de = f"{pre_de}{'wo' if pre_de else 'Wo'} {de_be} {np.de['nom']}"
            return self.finish(en, de, "?")
        if r < 0.3:
            # How much does the car cost?
            n = g.pick_noun(flags_any={"cost"})
            np = g.np_for(n, allow=("def", "this", "poss"), adj_p=0.25)
            if np.plural:
                return self.finish(f"how much do {np.en} cost", f"wie viel kosten {np.de['nom']}", "?")
            return self.finish(f"how much does {np.en} cost", f"wie viel kostet {np.de['nom']}", "?")
        if r < 0.4:
            # How many dogs do you have?
            v = g.ch([x for x in V if x["base"] in ("have", "buy", "need", "see", "find", "sell", "read", "eat", "order")])
            cats, flags, excl = g.objspec_nouns(v["objs"])
            n = g.pick_noun(cats=cats - {"person"}, flags_any=flags, exclude=excl)
            while "mass" in n["flags"]:
                n = g.pick_noun(cats=cats - {"person"}, flags_any=flags, exclude=excl)
            subj = g.subject()
            cl = Clause(g, subj, "past" if g.p(0.3) else "pres", False, None, False)
            cl.verb = v
            if g.p(0.2):
                cl.time = g.time(cl.tense)
            en = f"how many {n['en_pl']} " + cl.en_question()
            de = f"wie viele {n['de_pl']} " + cl.de_question()
            return self.finish(fix_en(en), fix_de(de), "?")
        if r < 0.55:
            # What does Anna buy?  (object question)
            v = g.ch([x for x in V if x["case"] == "acc" and x["base"] not in ("have", "like", "know", "love", "meet", "visit", "call", "help")])
            subj = g.subject()
            tense = self.rand_tense()
            cl = Clause(g, subj, tense, False, None, tense == "pres" and v["prog"] and g.p(0.3))
            if g.p(0.15) and "nomodal" not in v["flags"]:
                cl.modal = g.ch(["can", "want", "must"])
                if tense == "fut":
                    cl.tense = "pres"
                cl.prog = False
            cl.verb = v
            if g.p(0.25):
                cl.pps.append(g.location())
            if g.p(0.25):
                cl.time = g.time(cl.tense)
            en = "what " + cl.en_question()
            de = "was " + cl.de_question()
            return self.finish(fix_en(en), fix_de(de), "?")
        if r < 0.65:
            # Who reads the book?
            cl = self.trans_clause(subj=NP("who", {"nom": "wer"}, P3S, "who"), question=True, neg=False)
            cl.time_front = False
            if cl.modal == "would_like":
                cl.modal = None
            _, _, decl, _ = cl.en_parts()
            en = " ".join(["who"] + decl + cl.en_tail())
            de = cl.de_decl()
            return self.finish(fix_en(en), fix_de(de), "?")
        # where / when / why + yes-no question body
        wh = g.r.random()
        if wh < 0.35:
            cl = self.trans_clause(question=True, allow_place=False, allow_time=True,
                                   neg="not" if g.p(0.3) else False)
            w_en, w_de = "why", "warum"
        elif wh < 0.65:
            cl = self.trans_clause(question=True, allow_time=False, neg=False)
            w_en, w_de = "when", "wann"
        elif wh < 0.85:
            cl = self.trans_clause(question=True, allow_place=False, neg=False)
            cl.pps = []
            w_en, w_de = "where", "wo"
        else:
            v = g.ch([x for x in IV if x["kinds"] & {"dest", "city"}])
            subj = g.subject()
            tense = self.rand_tense()
            cl = Clause(g, subj, tense, False, None, tense == "pres" and g.p(0.5))
            cl.verb = v
            if g.p(0.3):
                cl.time = g.time(tense)
            w_en, w_de = "where", "wohin"
        cl.time_front = False
        if cl.en_parts()[0] is None:
            cl.neg = False
        if cl.modal == "would_like":
            cl.modal = None
        en = f"{w_en} " + cl.en_question()
        de = f"{w_de} " + cl.de_question()
        return self.finish(fix_en(en), fix_de(de), "?")

    def s_sub(self):
        """Main clause + subordinate clause (weil/dass/obwohl/wenn)."""
        g = self.g
        r = g.r.random()
        if r < 0.45:
            conj = g.ch([("because", "weil"), ("because", "weil"), ("although", "obwohl"), ("when", "wenn")])
            tense = "pres" if conj[0] == "when" else None
            main = self.intr_clause(tense=tense) if g.p(0.4) else self.trans_clause(allow_time=False, tense=tense)
            main.time_front = False
            sub = self.cop_clause(tense=tense) if g.p(0.4) else self.trans_clause(allow_place=False, tense=tense)
            if conj[0] == "when":
                if sub.modal not in (None, "can"):
                    sub.modal = None
                if main.modal == "would_like":
                    main.modal = None
            sub.time_front = False
            if sub.cop is None and sub.en_parts()[0] is None and sub.neg == "never" and sub.tense == "fut":
                sub.neg = False
            en = f"{main.en_decl()} {conj[0]} {sub.en_decl()}"
            de = f"{main.de_decl()}, {conj[1]} {sub.de_sub()}"
            return self.finish(fix_en(en), fix_de(de))
        # I think that ... / Anna says that ...
        subj = g.subject(pron_p=0.6, name_p=0.3)
        pi = subj.person
        s3 = pi == P3S
        vv = g.ch([("think", "thinks", ["glaube", "glaubst", "glaubt", "glauben", "glauben"]),
                   ("know", "knows", ["weiß", "weißt", "weiß", "wissen", "wissen"]),
                   ("say", "says", ["sage", "sagst", "sagt", "sagen", "sagen"]),
                   ("hope", "hopes", ["hoffe", "hoffst", "hofft", "hoffen", "hoffen"])])
        sub = self.cop_clause() if g.p(0.4) else (self.trans_clause(allow_place=False) if g.p(0.7) else self.intr_clause())
        sub.time_front = False
        that = "that " if g.p(0.6) else ""
        en = f"{subj.en} {vv[1] if s3 else vv[0]} {that}{sub.en_decl()}"
        de = f"{subj.de['nom']} {vv[2][pi]}, dass {sub.de_sub()}"
        return self.finish(fix_en(en), fix_de(de))

    def s_coord(self):
        g = self.g
        c1 = self.trans_clause(allow_time=False) if g.p(0.6) else self.intr_clause()
        c2 = self.trans_clause() if g.p(0.5) else (self.intr_clause() if g.p(0.5) else self.cop_clause())
        c1.time_front = False
        c2.time_front = False
        if g.p(0.6):
            en = f"{c1.en_decl()} and {c2.en_decl()}"
            de = f"{c1.de_decl()} und {c2.de_decl()}"
        else:
            en = f"{c1.en_decl()}, but {c2.en_decl()}"
            de = f"{c1.de_decl()}, aber {c2.de_decl()}"
        return self.finish(fix_en(en), fix_de(de))

    def s_quote(self):
        g = self.g
        subj = g.subject(pron_p=0.3, name_p=0.5)
        pi = subj.person
        tense = "past" if g.p(0.4) else "pres"
        if tense == "past":
            say_en, say_de = "said", ["sagte", "sagtest", "sagte", "sagten", "sagten"][pi]
        else:
            say_en = "says" if pi == P3S else "say"
            say_de = ["sage", "sagst", "sagt", "sagen", "sagen"][pi]
        r = g.r.random()
        if r < 0.5:
            inner = self.s_decl()
        elif r < 0.8:
            inner = self.s_yesno() if g.p(0.5) else self.s_wh()
        else:
            inner = self.s_imp()
        if g.p(0.7):
            en = f'{subj.en} {say_en}: "{inner[0]}"'
            de = f'{subj.de["nom"]} {say_de}: "{inner[1]}"'
        else:
            # "..." , Anna says.
            ie, idg = inner
            if ie.endswith("."):
                ie = ie[:-1] + ","
                idg = idg[:-1]
                en = f'"{ie}" {subj.en} {say_en}'
                de = f'"{idg}", {say_de} {subj.de["nom"]}'
            else:
                en = f'"{ie}" {subj.en} {say_en}'
                de = f'"{idg}", {say_de} {subj.de["nom"]}'
            return self.finish(fix_en(en), fix_de(de))
        return cap(fix_en(en)), cap(fix_de(de))

    def s_imp(self):
        g = self.g
        if g.p(0.8):
            v = g.ch([x for x in V if x["imp"]])
            obj = g.obj_np(v)
            while obj.pron and obj.en_obj in ("you",):
                obj = g.obj_np(v)
            neg = g.p(0.25) and obj.kind not in ("num", "coord")
            imp = v["imp"]
            if imp.startswith("neg:"):
                imp, neg = imp[4:], obj.kind not in ("num", "coord")
                if not neg:
                    return self.s_imp()
            part = ""
            if "|" in imp:
                imp, part = imp.split("|")
            if neg:
                en = f"don't {v['base']} {obj.en_obj}"
                de_o = obj.de_kein[v["case"]] if obj.kind in ("indef", "bare") else obj.de[v["case"]] + " nicht"
                de = f"{imp} {de_o}"
            else:
                en = f"{v['base']} {obj.en_obj}"
                de = f"{imp} {obj.de[v['case']]}"
            if part:
                de += " " + part
        else:
            v = g.ch([x for x in IV if x["imp"]])
            neg = g.p(0.2)
            pp = None
            if v["kinds"] & {"dest", "city", "home"}:
                pp = g.destination(v["kinds"])
            elif "wait" in v["kinds"]:
                n = g.pick_noun(cats={"vehicle", "person"}, exclude={"car", "bike", "truck", "boat"})
                np = g.np_for(n, allow=("def", "poss"), adj_p=0.1)
                pp = (f"for {np.en}", f"auf {np.de['acc']}")
            en = ("don't " if neg else "") + v["base"] + (" " + pp[0] if pp else "")
            de = v["imp"] + (" nicht" if neg else "") + (" " + pp[1] if pp else "")
        if g.p(0.3):
            if g.p(0.5):
                en, de = "please " + en, "bitte " + de
            else:
                en, de = en + ", please", de + ", bitte"
            return self.finish(fix_en(en), fix_de(de), "." if g.p(0.7) else "!")
        return self.finish(fix_en(en), fix_de(de), "!")

    def s_numbers(self):
        g = self.g
        r = g.r.random()
        if r < 0.35:
            # prices
            n = g.pick_noun(flags_any={"cost"})
            np = g.np_for(n, allow=("def", "this", "poss", "gen"), adj_p=0.3)
            big = "place" in n["cats"] or "vehicle" in n["cats"] or n["en"] in ("horse",)
            cheap = n["cats"] & {"food", "drink"}
            if big:
                k = g.ch([g.r.randint(1, 99) * 1000, g.r.randint(100, 990) * 100, g.r.randint(1, 90) * 10000])
                en_p, de_p = fmt_int_en(k), fmt_int_de(k)
            elif cheap or g.p(0.3):
                k = g.r.randint(1, 40) * 50 + g.ch([0, 0, 50])
                cents = g.ch([0, 0, 10, 20, 25, 50, 75, 90, 95, 99])
                e = k // 100 + 1
                if cents:
                    en_p, de_p = f"{e}.{cents:02d}", f"{e},{cents:02d}"
                else:
                    en_p, de_p = str(e), str(e)
            else:
                k = g.r.randint(5, 900)
                en_p, de_p = fmt_int_en(k), fmt_int_de(k)
            tense = "pres" if g.p(0.75) else "past"
            if tense == "pres":
                ve = "cost" if np.plural else "costs"
                vd = "kosten" if np.plural else "kostet"
            else:
                ve = "cost"
                vd = "kosteten" if np.plural else "kostete"
            if en_p == "1":
                return self.finish(f"{np.en} {ve} one euro", f"{np.de['nom']} {vd} einen Euro")
            return self.finish(f"{np.en} {ve} {en_p} euros", f"{np.de['nom']} {vd} {de_p} Euro")
        if r < 0.5:
            # distances
            n = g.pick_noun(flags_any={"dest", "visit"}, cats={"place"})
            np = g.np_for(n, allow=("def", "poss"), adj_p=0.15)
            be, bd = ("are", "sind") if np.plural else ("is", "ist")
            if g.p(0.5):
                d = g.r.randint(3, 99) / 2
                if d == int(d):
                    en_d, de_d = str(int(d)), str(int(d))
                else:
                    en_d, de_d = f"{d:.1f}", f"{d:.1f}".replace(".", ",")
                return self.finish(f"{np.en} {be} {en_d} kilometers away", f"{np.de['nom']} {bd} {de_d} Kilometer entfernt")
            d = g.r.randint(2, 95) * 10
            return self.finish(f"{np.en} {be} {d} meters away", f"{np.de['nom']} {bd} {d} Meter entfernt")
        if r < 0.6:
            # temperatures
            c_en, c_de = g.ch(CITIES)
            t = g.r.randint(-10, 38)
            tense = g.ch(["pres", "past", "fut"])
            te, td = g.time(tense)
            if t in (1, -1):
                t = 2
            deg = "degrees"
            if tense == "pres":
                return self.finish(f"it is {t} {deg} in {c_en} {te}", f"in {c_de} sind es {td} {t} Grad")
            if tense == "past":
                return self.finish(f"it was {t} {deg} in {c_en} {te}", f"in {c_de} waren es {td} {t} Grad")
            return self.finish(f"it will be {t} {deg} in {c_en} {te}", f"in {c_de} werden es {td} {t} Grad sein")
        if r < 0.7:
            # years
            y = g.r.randint(1850, 2023)
            if g.p(0.5):
                nm = g.subject(pron_p=0.3, name_p=0.5)
                be = "were" if nm.person in (P2S, P1P, P3P) else "was"
                de_be = ["wurde", "wurdest", "wurde", "wurden", "wurden"][nm.person]
                return self.finish(f"{nm.en} {be} born in {y}", f"{nm.de['nom']} {de_be} {y} geboren")
            n = g.pick_noun(flags_any={"build"}, cats={"place"})
            np = g.np_for(n, allow=("def", "this"), adj_p=0.2)
            vv = g.ch([("built", "gebaut"), ("opened", "eröffnet"), ("sold", "verkauft")])
            if n["en"] in ("bridge", "castle") and vv[0] == "opened":
                vv = ("built", "gebaut")
            be, bd = ("were", "wurden") if np.plural else ("was", "wurde")
            return self.finish(f"{np.en} {be} {vv[0]} in {y}", f"{np.de['nom']} {bd} {y} {vv[1]}")
        if r < 0.85:
            # timetable: The train leaves at 7:30.
            n = g.pick_noun(cats={"vehicle"}, exclude={"car", "bike", "truck"})
            np = g.np_for(n, allow=("def", "this", "poss"), adj_p=0.1)
            if np.kind == "poss" and g.p(0.7):
                np = g.np_noun(n, "def", False)
            ce, cd = g.clock()
            pl = np.plural
            vv = g.ch([("leave", "leaves", "left", "fahren", "fährt", "ab", "abgefahren"),
                       ("arrive", "arrives", "arrived", "kommen", "kommt", "an", "angekommen")])
            tense = "pres" if g.p(0.7) else "past"
            if tense == "pres":
                en = f"{np.en} {vv[0] if pl else vv[1]} {ce}"
                de = f"{np.de['nom']} {vv[3] if pl else vv[4]} {cd} {vv[5]}"
                if g.p(0.25):
                    en = f"when does {np.en} {vv[0]}" if not pl else f"when do {np.en} {vv[0]}"
                    de = f"wann {vv[3] if pl else vv[4]} {np.de['nom']} {vv[5]}"
                    return self.finish(en, de, "?")
            else:
                en = f"{np.en} {vv[2]} {ce}"
                de = f"{np.de['nom']} {'sind' if pl else 'ist'} {cd} {vv[6]}"
            return self.finish(en, de)
        # percentages
        n = g.pick_noun(cats={"person"})
        pc = g.r.randint(2, 99)
        a = g.ch([a for a in A if "person" in a["cats"]])
        return self.finish(f"{pc} percent of the {n['en_pl']} are {a['en']}",
                           f"{pc} Prozent der {n['de_pl']} sind {a['de']}")

    def s_there(self):
        g = self.g
        n = g.pick_noun(cats={"animal", "thing", "person", "vehicle", "clothes", "food"})
        if g.p(0.5) or "mass" in n["flags"]:
            np = g.np_noun(n, "indef", False, g.pick_adj(n, 0.3))
        else:
            np = g.np_noun(n, "num", True, g.pick_adj(n, 0.3), num=g.rand_number())
        loc = g.location()
        past = g.p(0.3)
        if np.plural:
            be, bd = ("were", "waren") if past else ("are", "sind")
        else:
            be, bd = ("was", "war") if past else ("is", "ist")
        return self.finish(f"there {be} {np.en} {loc[0]}", f"{loc[1]} {bd} {np.de['nom']}")

    def s_company(self):
        g = self.g
        co = g.ch(COMPANIES)
        r = g.r.random()
        if r < 0.4:
            subj = g.subject(pron_p=0.4, name_p=0.5)
            past = g.p(0.3)
            pi = subj.person
            if past:
                en = f"{subj.en} worked for {co}"
                de = f"{subj.de['nom']} {AUX['haben'][pi]} für {co} gearbeitet"
            else:
                en = f"{subj.en} {'works' if pi == P3S else 'work'} for {co}"
                de = f"{subj.de['nom']} {reg('arbeiten')[pi]} für {co}"
            return self.finish(en, de)
        if r < 0.7:
            v = g.ch([x for x in V if x["base"] in ("sell", "build", "repair", "buy")])
            cats, flags, excl = g.objspec_nouns(v["objs"])
            n = g.pick_noun(cats=cats - {"person"}, flags_any=flags, exclude=excl)
            np = g.np_for(n, allow=("bare", "def"), adj_p=0.4)
            return self.finish(f"{co} {v['s3']} {np.en}", f"{co} {v['pres'][2]} {np.de['acc']}")
        subj = g.subject(pron_p=0.6, name_p=0.3)
        pi = subj.person
        n = g.pick_noun(cats={"food", "drink", "clothes", "thing"})
        np = g.np_for(n, allow=("bare", "def", "poss"), adj_p=0.2)
        en = f"{subj.en} {'buys' if pi == P3S else 'buy'} {np.en} at {co}"
        de = f"{subj.de['nom']} {reg('kaufen')[pi]} {np.de['acc']} bei {co}"
        return self.finish(en, de)

    FIXED = [
        ("Good morning!", "Guten Morgen!"), ("Good evening!", "Guten Abend!"),
        ("Good night!", "Gute Nacht!"), ("Thank you very much.", "Vielen Dank."),
        ("Thanks a lot!", "Vielen Dank!"), ("You're welcome.", "Gern geschehen."),
        ("How are you?", "Wie geht es dir?"), ("I'm fine, thanks.", "Mir geht es gut, danke."),
        ("See you tomorrow!", "Bis morgen!"), ("See you soon!", "Bis bald!"),
        ("Sorry, I don't know.", "Entschuldigung, ich weiß es nicht."),
        ("What time is it?", "Wie spät ist es?"), ("It's raining.", "Es regnet."),
        ("It was raining yesterday.", "Gestern hat es geregnet."),
        ("It's snowing.", "Es schneit."), ("Happy birthday!", "Alles Gute zum Geburtstag!"),
        ("Have a nice day!", "Einen schönen Tag noch!"), ("Welcome to Berlin!", "Willkommen in Berlin!"),
        ("I don't understand.", "Ich verstehe nicht."), ("Can you help me?", "Kannst du mir helfen?"),
    ]

    def s_fixed(self):
        return self.g.ch(self.FIXED)

    def s_time_of(self):
        g = self.g
        ce, cd = g.clock()
        subj = g.subject()
        cl = self.intr_clause(subj=subj, neg=False)
        cl.time = (ce, cd)
        cl.time_front = g.p(0.2)
        return self.finish(fix_en(cl.en_decl()), fix_de(cl.de_decl()))


def fix_en(s):
    s = " ".join(s.split())
    s = s.replace(" i ", " I ")
    return s


def fix_de(s):
    return " ".join(s.split())


WEIGHTS = [
    ("s_decl", 40), ("s_yesno", 10), ("s_wh", 10), ("s_sub", 9), ("s_coord", 6),
    ("s_quote", 3), ("s_imp", 5), ("s_numbers", 8), ("s_there", 3),
    ("s_company", 1.5), ("s_fixed", 0.3), ("s_time_of", 3),
]


def generate(seed, n_total):
    g = Gen(seed)
    t = Templates(g)
    names = [w for w, _ in WEIGHTS]
    weights = [x for _, x in WEIGHTS]
    seen = set()
    pairs = []
    tries = 0
    while len(pairs) < n_total:
        tries += 1
        if tries > n_total * 50:
            raise RuntimeError("grammar too small for requested corpus size")
        name = g.r.choices(names, weights)[0]
        en, de = getattr(t, name)()
        en = " ".join(en.split())
        de = " ".join(de.split())
        if en in seen:
            continue
        if len(en.split()) > 30:
            continue
        seen.add(en)
        pairs.append((en, de))
    return pairs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "assets", "corpus"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--valid", type=int, default=500)
    ap.add_argument("--test", type=int, default=200)
    args = ap.parse_args(argv)

    total = args.train + args.valid + args.test
    pairs = generate(args.seed, total)
    rng = random.Random(args.seed + 1000)
    rng.shuffle(pairs)
    splits = {
        "test": pairs[: args.test],
        "valid": pairs[args.test: args.test + args.valid],
        "train": pairs[args.test + args.valid:],
    }
    os.makedirs(args.out, exist_ok=True)
    total_bytes = 0
    for split, items in splits.items():
        for side, idx in (("en", 0), ("de", 1)):
            path = os.path.join(args.out, f"{split}.{side}")
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                for p in items:
                    f.write(p[idx] + "\n")
            total_bytes += os.path.getsize(path)
    vocab = {}
    for side, idx in (("en", 0), ("de", 1)):
        words = set()
        for p in splits["train"]:
            words.update(p[idx].split())
        vocab[side] = len(words)
    print(f"wrote {len(splits['train'])} train / {len(splits['valid'])} valid / "
          f"{len(splits['test'])} test pairs to {os.path.normpath(args.out)} "
          f"({total_bytes / 1e6:.2f} MB); whitespace types en={vocab['en']} de={vocab['de']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
