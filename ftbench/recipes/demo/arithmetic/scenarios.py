"""The word-problem scenarios: names, items and thirteen scenario families, each returning (question,
reasoning lines, answer) in English or Chinese. Every number in the reasoning comes from `exact.calc`."""

from __future__ import annotations

import math
import random

from ftbench.recipes.demo.arithmetic.exact import calc as _calc

# --------------------------------------------------------------------------------------------------
# names and things
# --------------------------------------------------------------------------------------------------

_EN_PEOPLE = [
    ("Emma", "she"),
    ("Liam", "he"),
    ("Olivia", "she"),
    ("Noah", "he"),
    ("Ava", "she"),
    ("Lucas", "he"),
    ("Mia", "she"),
    ("Ethan", "he"),
    ("Sofia", "she"),
    ("Mason", "he"),
    ("Chloe", "she"),
    ("James", "he"),
    ("Priya", "she"),
    ("Omar", "he"),
    ("Hana", "she"),
    ("Diego", "he"),
    ("Grace", "she"),
    ("Felix", "he"),
    ("Nora", "she"),
    ("Samuel", "he"),
    ("Zara", "she"),
    ("Kenji", "he"),
    ("Lily", "she"),
    ("Mateo", "he"),
]
_ZH_PEOPLE = [
    ("小明", "他"),
    ("小红", "她"),
    ("李华", "他"),
    ("王芳", "她"),
    ("张伟", "他"),
    ("陈静", "她"),
    ("刘洋", "他"),
    ("赵磊", "他"),
    ("孙悦", "她"),
    ("周杰", "他"),
    ("吴婷", "她"),
    ("郑浩", "他"),
    ("小刚", "他"),
    ("小丽", "她"),
    ("何平", "他"),
    ("林欣", "她"),
    ("马骏", "他"),
    ("高雪", "她"),
]
# pronoun -> (object, possessive, reflexive)
_EN_FORMS = {"she": ("her", "her", "herself"), "he": ("him", "his", "himself")}

# (English plural, Chinese noun, Chinese measure word, min price, max price)
_ITEMS = [
    ("notebooks", "笔记本", "本", 2, 6),
    ("pens", "钢笔", "支", 1, 4),
    ("apples", "苹果", "个", 1, 3),
    ("comic books", "漫画书", "本", 4, 9),
    ("cups of tea", "奶茶", "杯", 3, 8),
    ("T-shirts", "T恤", "件", 8, 15),
    ("sandwiches", "三明治", "个", 3, 7),
    ("packs of stickers", "贴纸", "包", 1, 5),
    ("bottles of juice", "果汁", "瓶", 2, 5),
    ("toy cars", "玩具车", "辆", 5, 12),
    ("pairs of socks", "袜子", "双", 2, 6),
    ("plant pots", "花盆", "个", 4, 10),
]
_SWEETS = [
    ("candies", "颗糖"),
    ("stickers", "张贴纸"),
    ("marbles", "颗弹珠"),
    ("cookies", "块饼干"),
    ("cards", "张卡片"),
]
# (English, Chinese with its measure word)
_BIG_THINGS = [
    ("bicycle", "一辆自行车"),
    ("jacket", "一件外套"),
    ("backpack", "一个书包"),
    ("pair of headphones", "一副耳机"),
    ("board game", "一盒桌游"),
    ("lamp", "一盏台灯"),
    ("pair of running shoes", "一双跑鞋"),
    ("desk chair", "一把椅子"),
]
_FRUITS = [("apples", "苹果"), ("oranges", "橙子"), ("pears", "梨"), ("peaches", "桃子"), ("lemons", "柠檬")]
_VEHICLES = [("A train", "一列火车"), ("A bus", "一辆大巴"), ("A truck", "一辆卡车"), ("A car", "一辆汽车")]
_HABITS = [
    ("drinks", "glasses of water", "喝", "杯水"),
    ("reads", "pages", "读", "页书"),
    ("does", "push-ups", "做", "个俯卧撑"),
    ("walks", "kilometres", "走", "公里路"),
    ("practises piano for", "minutes", "练琴", "分钟"),
]


class _P:
    """One person: name, pronoun forms for either language."""

    def __init__(self, rng: random.Random, lang: str, exclude: tuple[str, ...] = ()):
        pool = _ZH_PEOPLE if lang == "zh" else _EN_PEOPLE
        name, pron = rng.choice([p for p in pool if p[0] not in exclude])
        self.name, self.pron = name, pron
        self.Pron = pron.capitalize()
        self.obj, self.poss, self.refl = _EN_FORMS.get(pron, (pron, pron + "的", "自己"))


def _people(rng: random.Random, lang: str, k: int) -> list[_P]:
    out: list[_P] = []
    for _ in range(k):
        out.append(_P(rng, lang, tuple(p.name for p in out)))
    return out


Problem = tuple[str, list[str], int]  # question, reasoning lines, final answer

# --------------------------------------------------------------------------------------------------
# templates: each returns (question, reasoning lines, answer) for lang "en" or "zh"
# --------------------------------------------------------------------------------------------------


def _shopping(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    (i1, i2) = rng.sample(_ITEMS, 2)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    pa, pb = rng.randint(i1[3], i1[4]), rng.randint(i2[3], i2[4])
    s1, c1 = _calc(f"{a}*{pa}")
    variant = rng.randrange(3)
    if variant == 0:  # two kinds of item, total cost: 3 steps
        s2, c2 = _calc(f"{b}*{pb}")
        s3, total = _calc(f"{c1}+{c2}")
        if lang == "zh":
            q = (
                f"{p.name}买了{a}{i1[2]}{i1[1]}，每{i1[2]}{pa}元，又买了{b}{i2[2]}{i2[1]}，每{i2[2]}{pb}元。"
                f"{p.name}一共花了多少元？"
            )
            lines = [f"{i1[1]}花了 {s1} 元。", f"{i2[1]}花了 {s2} 元。", f"一共花了 {s3} 元。"]
        else:
            q = (
                f"{p.name} buys {a} {i1[0]} for ${pa} each and {b} {i2[0]} for ${pb} each. "
                f"How many dollars does {p.pron} spend in total?"
            )
            lines = [
                f"The {i1[0]} cost {s1} dollars.",
                f"The {i2[0]} cost {s2} dollars.",
                f"Altogether {p.pron} spends {s3} dollars.",
            ]
        return q, lines, total
    if variant == 1:  # one kind of item, change from banknotes: 2 steps (3 with two notes)
        bill = next((x for x in (10, 20, 50, 100) if x > c1), None)
        if bill is None:  # more than $100: pays with two $100 notes (at most 9*15 = 135 < 200)
            paid_zh, paid_en = "两张100元的钞票", "two $100 bills"
            s_paid, bill = _calc("2*100")
            paid_lines = [f"{p.pron}付了 {s_paid} 元。"] if lang == "zh" else [f"{p.Pron} pays {s_paid} dollars."]
        else:
            paid_zh, paid_en, paid_lines = f"一张{bill}元的钞票", f"a ${bill} bill", []
        s2, change = _calc(f"{bill}-{c1}")
        if lang == "zh":
            q = f"{p.name}买了{a}{i1[2]}{i1[1]}，每{i1[2]}{pa}元。{p.pron}付了{paid_zh}，应该找回多少元？"
            lines = [f"{i1[1]}一共 {s1} 元。", *paid_lines, f"应找回 {s2} 元。"]
        else:
            q = (
                f"{p.name} buys {a} {i1[0]} that cost ${pa} each and pays with {paid_en}. "
                f"How much change, in dollars, does {p.pron} get back?"
            )
            lines = [f"The {i1[0]} cost {s1} dollars.", *paid_lines, f"{p.Pron} gets back {s2} dollars in change."]
        return q, lines, change
    # one kind of item, just the cost: 1 step
    if lang == "zh":
        q = f"一{i1[2]}{i1[1]}{pa}元，{p.name}想买{a}{i1[2]}，需要多少元？"
        lines = [f"需要 {s1} 元。"]
    else:
        q = f"One of the {i1[0]} at the market costs ${pa}. How many dollars does {p.name} need to buy {a} of them?"
        lines = [f"{p.Pron} needs {s1} dollars."]
    return q, lines, c1


def _ages(rng: random.Random, lang: str) -> Problem:
    x, y, z = _people(rng, lang, 3)
    a = rng.randint(4, 30)
    variant = rng.randrange(3)
    if variant == 0:  # older by d, age in k years
        d, k = rng.randint(2, 15), rng.randint(2, 12)
        s1, b = _calc(f"{a}+{d}")
        s2, ans = _calc(f"{b}+{k}")
        if lang == "zh":
            q = f"{x.name}今年{a}岁，{y.name}比{x.name}大{d}岁。{k}年后{y.name}多少岁？"
            lines = [f"{y.name}今年 {s1} 岁。", f"{k}年后{y.name} {s2} 岁。"]
        else:
            q = (
                f"{x.name} is {a} years old. {y.name} is {d} years older than {x.name}. "
                f"How old will {y.name} be in {k} years?"
            )
            lines = [f"{y.name} is {s1} years old now.", f"In {k} years {y.name} will be {s2} years old."]
        return q, lines, ans
    if variant == 1:  # twice as old, then younger by d
        d = rng.randint(1, 2 * a - 1)
        s1, b = _calc(f"{a}*2")
        s2, ans = _calc(f"{b}-{d}")
        if lang == "zh":
            q = f"{x.name}今年{a}岁。{y.name}的年龄是{x.name}的2倍，{z.name}比{y.name}小{d}岁。{z.name}今年多少岁？"
            lines = [f"{y.name}今年 {s1} 岁。", f"{z.name}今年 {s2} 岁。"]
        else:
            q = (
                f"{x.name} is {a} years old. {y.name} is twice as old as {x.name}, and {z.name} is {d} years "
                f"younger than {y.name}. How old is {z.name}?"
            )
            lines = [f"{y.name} is {s1} years old.", f"{z.name} is {s2} years old."]
        return q, lines, ans
    # sum of three ages: 3 steps
    d, e = rng.randint(1, 12), rng.randint(1, min(a - 1, 12))
    s1, b = _calc(f"{a}+{d}")
    s2, c = _calc(f"{a}-{e}")
    s3, ans = _calc(f"{a}+{b}+{c}")
    if lang == "zh":
        q = f"{x.name}今年{a}岁，{y.name}比{x.name}大{d}岁，{z.name}比{x.name}小{e}岁。三个人的年龄加起来一共多少岁？"
        lines = [f"{y.name}今年 {s1} 岁。", f"{z.name}今年 {s2} 岁。", f"三人年龄之和是 {s3} 岁。"]
    else:
        q = (
            f"{x.name} is {a}. {y.name} is {d} years older than {x.name}, and {z.name} is {e} years younger "
            f"than {x.name}. What is the sum of their three ages?"
        )
        lines = [f"{y.name} is {s1} years old.", f"{z.name} is {s2} years old.", f"Together their ages add up to {s3}."]
    return q, lines, ans


def _sharing(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    en, zh = rng.choice(_SWEETS)
    m = rng.randint(2, 8)
    if rng.random() < 0.5:  # gives k to each of m friends; how many left
        k = rng.randint(2, 9)
        n = k * m + rng.randint(0, 30)
        s1, given = _calc(f"{k}*{m}")
        s2, left = _calc(f"{n}-{given}")
        if lang == "zh":
            q = f"{p.name}有{n}{zh}，{p.pron}给{m}个朋友每人{k}{zh[0]}。{p.name}还剩多少{zh}？"
            lines = [f"{p.pron}一共送出 {s1} {zh[0]}。", f"{p.pron}还剩 {s2} {zh[0]}。"]
        else:
            q = (
                f"{p.name} has {n} {en}. {p.Pron} gives {k} {en} to each of {m} friends. "
                f"How many {en} does {p.pron} have left?"
            )
            lines = [f"{p.Pron} gives away {s1} {en}.", f"{p.Pron} has {s2} {en} left."]
        return q, lines, left
    # eats e, shares the rest equally
    each = rng.randint(2, 12)
    e = rng.randint(1, 10)
    n = each * m + e
    s1, rest = _calc(f"{n}-{e}")
    s2, ans = _calc(f"{rest}/{m}")
    if lang == "zh":
        q = f"{p.name}有{n}{zh}，自己留下{e}{zh[0]}，剩下的平均分给{m}个同学。每个同学分到多少{zh}？"
        lines = [f"要分的有 {s1} {zh[0]}。", f"每个同学分到 {s2} {zh[0]}。"]
    else:
        q = (
            f"{p.name} has {n} {en}. {p.Pron} keeps {e} for {p.refl} and shares the rest equally among {m} "
            f"classmates. How many {en} does each classmate get?"
        )
        lines = [f"{p.Pron} shares {s1} {en}.", f"Each classmate gets {s2} {en}."]
    return q, lines, ans


def _speed(rng: random.Random, lang: str) -> Problem:
    ven, vzh = rng.choice(_VEHICLES)
    variant = rng.randrange(3)
    if variant == 0:  # two legs, total distance: 3 steps
        v, w = rng.randint(4, 12) * 10, rng.randint(4, 12) * 10
        t, s = rng.randint(1, 5), rng.randint(1, 4)
        s1, d1 = _calc(f"{v}*{t}")
        s2, d2 = _calc(f"{w}*{s}")
        s3, ans = _calc(f"{d1}+{d2}")
        if lang == "zh":
            q = f"{vzh}先以每小时{v}千米的速度行驶了{t}小时，然后以每小时{w}千米的速度行驶了{s}小时。它一共行驶了多少千米？"
            lines = [f"第一段路程是 {s1} 千米。", f"第二段路程是 {s2} 千米。", f"一共行驶了 {s3} 千米。"]
        else:
            q = (
                f"{ven} travels at {v} km per hour for {t} hours and then at {w} km per hour for {s} hours. "
                f"How many kilometres does it travel in total?"
            )
            lines = [f"The first part is {s1} km.", f"The second part is {s2} km.", f"In total it travels {s3} km."]
        return q, lines, ans
    p = _P(rng, lang)
    if variant == 1:  # distance / speed: 1 step
        v, h = rng.randint(3, 20), rng.randint(2, 9)
        s1, ans = _calc(f"{v * h}/{v}")
        if lang == "zh":
            q = f"{p.name}骑自行车，每小时骑{v}千米。{p.pron}要骑{v * h}千米，需要多少小时？"
            lines = [f"需要 {s1} 小时。"]
        else:
            q = f"{p.name} cycles at {v} km per hour. How many hours does it take {p.obj} to ride {v * h} km?"
            lines = [f"It takes {s1} hours."]
        return q, lines, ans
    # walking in minutes: convert hours to minutes, then distance: 2 steps
    v, h = rng.randint(3, 6), rng.randint(2, 5)
    total = v * h
    s1, mins = _calc(f"{h}*60")
    s2, per = _calc(f"{mins}/{total}")
    if lang == "zh":
        q = f"{p.name}{h}小时走了{total}千米，而且速度一直不变。{p.pron}平均走1千米需要多少分钟？"
        lines = [f"{h}小时是 {s1} 分钟。", f"走1千米需要 {s2} 分钟。"]
    else:
        q = (
            f"{p.name} walks {total} km in {h} hours at a steady pace. "
            f"How many minutes does {p.pron} take to walk 1 km?"
        )
        lines = [f"{h} hours is {s1} minutes.", f"Each kilometre takes {s2} minutes."]
    return q, lines, per


def _savings(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    ten, tzh = rng.choice(_BIG_THINGS)
    s, w = rng.randint(3, 25), rng.randint(3, 20)
    saved = s * w
    x = rng.randint(saved // 3, saved)
    s1, tot = _calc(f"{s}*{w}")
    s2, ans = _calc(f"{tot}-{x}")
    if rng.random() < 0.5:
        if lang == "zh":
            q = f"{p.name}每周存{s}元零花钱，存了{w}周后，花{x}元买了{tzh}。{p.pron}还剩多少元？"
            lines = [f"{w}周一共存了 {s1} 元。", f"还剩 {s2} 元。"]
        else:
            q = (
                f"{p.name} saves ${s} every week. After {w} weeks {p.pron} spends ${x} on a {ten}. "
                f"How many dollars does {p.pron} have left?"
            )
            lines = [f"{p.Pron} saves {s1} dollars.", f"{p.Pron} has {s2} dollars left."]
        return q, lines, ans
    # how much more is needed
    price = saved + rng.randint(5, 80)
    s2, ans = _calc(f"{price}-{tot}")
    if lang == "zh":
        q = f"{tzh}售价{price}元。{p.name}每周存{s}元，已经存了{w}周。{p.pron}还差多少元？"
        lines = [f"{p.pron}已经存了 {s1} 元。", f"还差 {s2} 元。"]
    else:
        q = (
            f"A {ten} costs ${price}. {p.name} has saved ${s} a week for {w} weeks. "
            f"How many more dollars does {p.pron} need?"
        )
        lines = [f"So far {p.pron} has saved {s1} dollars.", f"{p.Pron} still needs {s2} dollars."]
    return q, lines, ans


def _baking(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    k = rng.choice([2, 3, 4, 5, 6, 8, 10, 12])  # cookies per bag
    c = rng.choice([6, 8, 9, 10, 12, 15, 16, 18, 20, 24])  # cookies per tray
    b = rng.randint(2, 6)  # trays; bump until the cookies fill whole bags
    while (b * c) % k:
        b += 1
    s1, total = _calc(f"{b}*{c}")
    s2, bags = _calc(f"{total}/{k}")
    if lang == "zh":
        q = f"{p.name}烤了{b}盘饼干，每盘{c}块。{p.pron}把饼干装进袋子，每袋装{k}块。一共能装多少袋？"
        lines = [f"一共有 {s1} 块饼干。", f"能装 {s2} 袋。"]
    else:
        q = (
            f"{p.name} bakes {b} trays of cookies with {c} cookies on each tray. {p.Pron} packs them in bags "
            f"of {k}. How many bags does {p.pron} fill?"
        )
        lines = [f"{p.Pron} bakes {s1} cookies.", f"{p.Pron} fills {s2} bags."]
    return q, lines, bags


def _reading(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    per, days = rng.randint(8, 40), rng.randint(2, 9)
    s1, r = _calc(f"{per}*{days}")
    if rng.random() < 0.5:  # one reading pace: 2 steps
        pages = r + rng.randint(10, 200)
        s2, ans = _calc(f"{pages}-{r}")
        if lang == "zh":
            q = f"一本书有{pages}页，{p.name}每天读{per}页，读了{days}天。还剩多少页没读？"
            lines = [f"{p.pron}已经读了 {s1} 页。", f"还剩 {s2} 页。"]
        else:
            q = (
                f"A book has {pages} pages. {p.name} reads {per} pages a day for {days} days. "
                f"How many pages are left to read?"
            )
            lines = [f"{p.Pron} has read {s1} pages.", f"There are {s2} pages left."]
        return q, lines, ans
    # a weekday pace and a weekend pace: 3 steps
    more = per + rng.randint(5, 30)
    s2, r2 = _calc(f"{more}*2")
    pages = r + r2 + rng.randint(10, 150)
    s3, ans = _calc(f"{pages}-{r}-{r2}")
    if lang == "zh":
        q = f"一本书有{pages}页。{p.name}前{days}天每天读{per}页，接下来的周末两天每天读{more}页。还剩多少页没读？"
        lines = [f"前{days}天读了 {s1} 页。", f"周末读了 {s2} 页。", f"还剩 {s3} 页。"]
    else:
        q = (
            f"A book has {pages} pages. {p.name} reads {per} pages a day for {days} days, then {more} pages "
            f"a day over the two-day weekend. How many pages are still unread?"
        )
        lines = [
            f"First {p.pron} reads {s1} pages.",
            f"Over the weekend {p.pron} reads {s2} pages.",
            f"That leaves {s3} pages unread.",
        ]
    return q, lines, ans


def _discount(rng: random.Random, lang: str) -> Problem:
    ten, tzh = rng.choice(_BIG_THINGS)
    pct = rng.choice([10, 20, 25, 30, 40, 50, 15, 5])
    step = 100 // math.gcd(100, pct)  # the smallest price whose discount is a whole number
    price = step * rng.randint(max(1, 40 // step), max(2, 600 // step))
    s1, off = _calc(f"{price}*{pct}/100")
    s2, sale = _calc(f"{price}-{off}")
    if rng.random() < 0.6:  # the sale price: 2 steps
        if lang == "zh":
            if rng.random() < 0.5:
                q = f"{tzh}原价{price}元，现在降价{pct}%出售。现在的售价是多少元？"
            else:
                q = f"商场搞活动，{tzh}在原价{price}元的基础上便宜{pct}%。活动价是多少元？"
            lines = [f"便宜了 {s1} 元。", f"现在的价格是 {s2} 元。"]
        else:
            if rng.random() < 0.5:
                q = f"A {ten} normally costs ${price}. This week it is {pct}% off. What is the sale price in dollars?"
            else:
                q = f"The price of a {ten} is cut by {pct}% from ${price}. How many dollars does it cost now?"
            lines = [f"The discount is {s1} dollars.", f"The sale price is {s2} dollars."]
        return q, lines, sale
    # several at the sale price: 3 steps
    p = _P(rng, lang)
    k = rng.randint(2, 4)
    s3, total = _calc(f"{sale}*{k}")
    if lang == "zh":
        q = f"{tzh}原价{price}元，商店打折降价{pct}%。{p.name}买了{k}{tzh[1]}，一共要付多少元？"
        lines = [f"每{tzh[1]}便宜 {s1} 元。", f"每{tzh[1]}的折后价是 {s2} 元。", f"{k}{tzh[1]}一共 {s3} 元。"]
    else:
        q = (
            f"A {ten} costs ${price}, and the shop is taking {pct}% off. {p.name} buys {k} of them as gifts. "
            f"How many dollars does {p.pron} pay?"
        )
        lines = [
            f"Each one is {s1} dollars cheaper.",
            f"Each one costs {s2} dollars.",
            f"For {k} of them {p.pron} pays {s3} dollars.",
        ]
    return q, lines, total


def _wages(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    h, x, y = rng.randint(9, 30), rng.randint(2, 8), rng.randint(2, 6)
    s1, daily = _calc(f"{h}*{x}")
    if rng.random() < 0.7:
        s2, ans = _calc(f"{daily}*{y}")
        if lang == "zh":
            q = f"{p.name}做兼职，每小时挣{h}元，每天工作{x}小时。{p.pron}{y}天一共挣多少元？"
            lines = [f"{p.pron}每天挣 {s1} 元。", f"{y}天一共挣 {s2} 元。"]
        else:
            q = (
                f"{p.name} earns ${h} an hour and works {x} hours a day. How many dollars does {p.pron} earn "
                f"in {y} days?"
            )
            lines = [f"{p.Pron} earns {s1} dollars a day.", f"In {y} days {p.pron} earns {s2} dollars."]
        return q, lines, ans
    # plus a one-off bonus: 3 steps
    bonus = rng.randint(1, 10) * 5
    s2, base = _calc(f"{daily}*{y}")
    s3, ans = _calc(f"{base}+{bonus}")
    if lang == "zh":
        q = f"{p.name}每小时挣{h}元，每天工作{x}小时，工作了{y}天，最后还得到{bonus}元奖金。{p.pron}一共得到多少元？"
        lines = [f"每天挣 {s1} 元。", f"{y}天的工资是 {s2} 元。", f"加上奖金一共 {s3} 元。"]
    else:
        q = (
            f"{p.name} earns ${h} an hour, works {x} hours a day for {y} days, and gets a ${bonus} bonus at "
            f"the end. How many dollars does {p.pron} receive altogether?"
        )
        lines = [
            f"{p.Pron} earns {s1} dollars a day.",
            f"Over {y} days that is {s2} dollars.",
            f"With the bonus {p.pron} receives {s3} dollars.",
        ]
    return q, lines, ans


def _classroom(rng: random.Random, lang: str) -> Problem:
    k = rng.choice([2, 3, 4, 5, 6])
    n = k * rng.randint(4, 9)
    s1, boys = _calc(f"{n}/{k}")
    if rng.random() < 0.35:  # just the fraction: 1 step
        if lang == "zh":
            q = f"一个班有{n}名学生，其中1/{k}的学生戴眼镜。戴眼镜的学生有多少名？"
            lines = [f"戴眼镜的学生有 {s1} 名。"]
        else:
            q = f"A class has {n} students and 1/{k} of them wear glasses. How many students wear glasses?"
            lines = [f"{s1} students wear glasses."]
        return q, lines, boys
    s2, girls = _calc(f"{n}-{boys}")
    if lang == "zh":
        q = f"一个班有{n}名学生，其中1/{k}是男生，其余是女生。这个班有多少名女生？"
        lines = [f"男生有 {s1} 名。", f"女生有 {s2} 名。"]
    else:
        q = f"A class has {n} students. 1/{k} of them are boys and the rest are girls. How many girls are in the class?"
        lines = [f"There are {s1} boys.", f"There are {s2} girls."]
    return q, lines, girls


def _harvest(rng: random.Random, lang: str) -> Problem:
    en, zh = rng.choice(_FRUITS)
    p = _P(rng, lang)
    k = rng.choice([4, 5, 6, 8, 10, 12])
    boxes = rng.randint(3, 15)
    total = k * boxes
    a = rng.randint(total // 4, 3 * total // 4)
    b = total - a
    s1, t = _calc(f"{a}+{b}")
    s2, ans = _calc(f"{t}/{k}")
    if lang == "zh":
        q = f"{p.name}上午摘了{a}个{zh}，下午摘了{b}个{zh}。每箱装{k}个，一共能装满多少箱？"
        lines = [f"一共摘了 {s1} 个{zh}。", f"能装满 {s2} 箱。"]
    else:
        q = (
            f"{p.name} picks {a} {en} in the morning and {b} {en} in the afternoon. {p.Pron} packs them into "
            f"boxes of {k}. How many boxes does {p.pron} fill?"
        )
        lines = [f"{p.Pron} picks {s1} {en}.", f"{p.Pron} fills {s2} boxes."]
    return q, lines, ans


def _weekly(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    verb, unit, zverb, zunit = rng.choice(_HABITS)
    c, w = rng.randint(2, 12), rng.randint(2, 6)
    s1, per_week = _calc(f"{c}*7")
    if rng.random() < 0.3:  # one week: 1 step
        if lang == "zh":
            q = f"{p.name}每天{zverb}{c}{zunit}，一周一共{zverb}多少{zunit}？"
            lines = [f"一周有7天，一共{zverb} {s1} {zunit}。"]
        else:
            q = f"{p.name} {verb} {c} {unit} every day. How many {unit} is that in one week?"
            lines = [f"A week has 7 days, so that is {s1} {unit}."]
        return q, lines, per_week
    s2, ans = _calc(f"{per_week}*{w}")
    if lang == "zh":
        q = f"{p.name}每天{zverb}{c}{zunit}。{w}周一共{zverb}多少{zunit}？"
        lines = [f"一周有7天，每周{zverb} {s1} {zunit}。", f"{w}周一共 {s2} {zunit}。"]
    else:
        q = f"{p.name} {verb} {c} {unit} every day. How many {unit} is that in {w} weeks?"
        lines = [f"A week has 7 days, so that is {s1} {unit} a week.", f"In {w} weeks it is {s2} {unit}."]
    return q, lines, ans


def _rows(rng: random.Random, lang: str) -> Problem:
    p = _P(rng, lang)
    r, per = rng.randint(3, 12), rng.randint(4, 15)
    s1, total = _calc(f"{r}*{per}")
    if rng.random() < 0.5:  # 1 step
        if lang == "zh":
            q = f"{p.name}在菜园里种了{r}行番茄，每行{per}棵。一共种了多少棵番茄？"
            lines = [f"一共种了 {s1} 棵番茄。"]
        else:
            q = f"{p.name} plants {r} rows of tomatoes with {per} plants in each row. How many tomato plants are there?"
            lines = [f"There are {s1} tomato plants."]
        return q, lines, total
    dead = rng.randint(1, total // 3)
    s2, ans = _calc(f"{total}-{dead}")
    if lang == "zh":
        q = f"{p.name}种了{r}行番茄，每行{per}棵，后来有{dead}棵枯死了。还剩多少棵番茄？"
        lines = [f"一开始有 {s1} 棵。", f"还剩 {s2} 棵。"]
    else:
        q = (
            f"{p.name} plants {r} rows of tomatoes with {per} plants in each row, but {dead} of the plants "
            f"die. How many tomato plants are left?"
        )
        lines = [f"{p.Pron} planted {s1} tomato plants.", f"That leaves {s2} plants."]
    return q, lines, ans


TEMPLATES = [
    _shopping,
    _ages,
    _sharing,
    _speed,
    _savings,
    _baking,
    _reading,
    _discount,
    _wages,
    _classroom,
    _harvest,
    _weekly,
    _rows,
]
