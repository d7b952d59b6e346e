"""Where the content is on a page that is not on canada.ca's GCWeb template.

Canadian governments publish on many templates besides GCWeb: ASP.NET WebForms (the whole body inside one
`<form id="aspnetForm">`), Drupal (`<main role="main">`, `.region-content`), WordPress (`<main id="main">`
around an `<article>`), Sitecore and AEM (`#main-content`, `.main-content`), and legacy table layouts like the
old cic.gc.ca (`#cn-centre-col-inner`, or a `<td>` beside a left-hand column). One rule serves them all:

1. a landmark (`<main>`, `[role=main]`, a content id or class, `<article>`) that holds a fair share of the
   page's text, else
2. text density: the deepest element that still holds most of the page's non-link text.

Furniture (navigation, header, footer, breadcrumbs) never counts toward that text. Columns beside the content
that carry rules ("a representative must be a lawyer in good standing", "e-mail documents to …") are kept as a
"Sidebar" section of their own, not thrown away with the menus around them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

#: An id or class that names the page's content area, on the templates above. Strong names count anywhere in
#: an id ("ctl00_MainContent_pnlBody"); weak ones only as a whole token (`class="content"`).
STRONG_CONTENT = re.compile(
    r"(?:^|[-_])(?:main-?content|content-?main|contentplaceholder\d*|page-?content|primary-?content|"
    r"body-?content|content-?area|region-content|cn-centre-col-inner|wb-main-in|field--name-body|"
    r"entry-content|node__content)(?:$|[-_])"
)
WEAK_CONTENT = re.compile(r"^(?:content|main|primary|center|centre|center-?col|centre-?col|cn-centre-col)$")
#: Ids and classes of page furniture: never content, never a sidebar.
FURNITURE_NAMES = re.compile(
    r"(?:^|[-_])(?:nav|navbar|navigation|menu|menubar|breadcrumbs?|footer|header|masthead|banner-?top|"
    r"skip|skiplinks?|copyright|social|share|sharing|cookie|search|site-?map|toolbar|utility|"
    r"languages|lang-?toggle|language-?(?:toggle|selector|switcher|links)|topbar|top-?links|asptrace)"
    r"(?:$|[-_])"
)
FURNITURE_TAGS = {"nav", "header", "footer"}
FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar"}
#: Words that make a column beside the content worth keeping: it states who, what, when or how much.
RULE_WORDS = re.compile(
    r"\b(?:must|required?|requirements?|eligib\w*|minimum|mandatory|representatives?|lawyers?|"
    r"consultants?|fees?|payments?|pay|deadlines?|submit\w*|documents?|intake|applications?|apply|"
    r"applicants?|NOC|TEER|CLB|forms?|processing)\b",
    re.IGNORECASE,
)
#: What text density may descend into: containers of blocks, never a heading or a paragraph.
CONTAINERS = {
    "div",
    "section",
    "article",
    "main",
    "form",
    "table",
    "tbody",
    "thead",
    "tr",
    "td",
    "th",
    "center",
    "span",
    "font",
    "blockquote",
    "dl",
    "fieldset",
}
LANDMARK_SHARE = 0.25  # a landmark holding less than this share of the page's text is a decoy
DENSITY_SHARE = 0.6  # text density descends while one child holds at least this share of all text
SIDEBAR_MIN_CHARS = 30


def _names(el: etree._Element) -> list[str]:
    """An element's id and class tokens, lower case."""
    out: list[str] = []
    for attr in ("id", "class"):
        value = el.get(attr)
        if value:
            out.extend(t.lower() for t in value.split())
    return out


def is_furniture(el: etree._Element) -> bool:
    tag = el.tag
    if tag in FURNITURE_TAGS:
        # A header inside an article or <main> is the article's own (its title), not the site's banner.
        return not (tag == "header" and _in_content(el))
    cls, id_, role = el.get("class"), el.get("id"), el.get("role")
    if not (cls or id_ or role):  # most elements: nothing to look at
        return False
    if role and role.lower() in FURNITURE_ROLES:
        return True
    for n in (f"{id_ or ''} {cls or ''}").lower().split():
        m = FURNITURE_NAMES.search(n)
        if m and not ("header" in m.group(0) and _own_header(el)):
            return True
    return False


def _own_header(el: etree._Element) -> bool:
    """A "header" that belongs to the content (an article's, or one holding the page's h1 and no menu)."""
    if _in_content(el):
        return True
    return any(True for _ in el.iter("h1")) and not any(True for _ in el.iter("nav", "ul"))


def _in_content(el: etree._Element) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent.tag in ("article", "main") or (parent.get("role") or "").lower() == "main":
            return True
        parent = parent.getparent()
    return False


def text_weights(root: etree._Element) -> tuple[dict[etree._Element, int], set[etree._Element]]:
    """Words of non-link, non-furniture text under each element, and the furniture elements found on the
    way (the outermost ones: what is inside furniture is never looked at again)."""
    weights: dict[etree._Element, int] = {}
    furniture: set[etree._Element] = set()
    for el in reversed(list(root.iter(etree.Element))):
        if el.tag == "a":
            weights[el] = 0
            continue
        if is_furniture(el):
            weights[el] = 0
            furniture.add(el)
            continue
        total = len((el.text or "").split())
        for child in el:
            total += weights.get(child, 0) + len((child.tail or "").split())
        weights[el] = total
    return weights, furniture


_NAMED = etree.XPath(".//*[@id or @class]")
_WITH_ROLE = etree.XPath(".//*[@role]")


def _landmark_groups(body: etree._Element) -> list[list[etree._Element]]:
    """Landmark candidates, in groups of equal trust."""
    named = [
        el
        for el in _NAMED(body)
        if el.tag not in ("form", "body", "html")
        and any(STRONG_CONTENT.search(n) or WEAK_CONTENT.match(n) for n in _names(el))
    ]
    return [
        list(body.iter("main")),
        [el for el in _WITH_ROLE(body) if el.get("role").lower() == "main"],
        named,
        list(body.iter("article")),
    ]


def inside(el: etree._Element, other: etree._Element) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent is other:
            return True
        parent = parent.getparent()
    return False


@dataclass
class PageLayout:
    main: etree._Element
    how: str  # how the content area was chosen, for `policywatch explain`
    sidebars: list[etree._Element]
    furniture: set[etree._Element]  # every furniture element outside and inside the content area


_TEXT_LENGTH = etree.XPath("string-length(normalize-space(.))")  # in libxml2: no Python per node
_FURNITURE_CANDIDATES = etree.XPath(".//*[@id or @class or @role] | .//nav | .//header | .//footer")


def analyse(body: etree._Element) -> PageLayout:
    """Choose the page's content area and the sidebars that state rules.

    The common case is cheap: a landmark holding a fair share of the page's text (measured in libxml2).
    Only a page without one is weighed element by element for text density."""
    furniture = {el for el in _FURNITURE_CANDIDATES(body) if is_furniture(el)}
    total = _TEXT_LENGTH(body)
    main, how = None, ""
    if total:
        for group in _landmark_groups(body):
            passing = [
                el for el in group if el not in furniture and _TEXT_LENGTH(el) >= LANDMARK_SHARE * total
            ]
            leaves = [el for el in passing if not any(o is not el and inside(o, el) for o in passing)]
            if leaves:
                main = max(leaves, key=_TEXT_LENGTH)
                how = f"landmark <{main.tag}{_label(main)}>"
                break
    if main is None:
        weights, _ = text_weights(body)
        main, how = by_density(body, weights)
    return PageLayout(main, how, sidebars(body, main, furniture), furniture)


def by_density(body: etree._Element, weights: dict[etree._Element, int]) -> tuple[etree._Element, str]:
    """The deepest container that still holds most of the page's non-link, non-furniture text."""
    total = weights.get(body, 0)
    if total == 0:
        return body, "the whole body (no text outside furniture)"
    node = body
    while True:
        children = [c for c in node if isinstance(c.tag, str) and c.tag in CONTAINERS]
        if not children:
            break
        best = max(children, key=lambda c: weights.get(c, 0))
        if weights.get(best, 0) < DENSITY_SHARE * total:
            break
        node = best
    return node, f"text density <{node.tag}{_label(node)}>"


def _label(el: etree._Element) -> str:
    if el.get("id"):
        return f"#{el.get('id')}"
    if el.get("class"):
        return "." + ".".join(el.get("class", "").split()[:2])
    return ""


def _non_link_text(el: etree._Element, furniture: set[etree._Element] | None = None) -> str:
    parts = [el.text or ""]
    for child in el:
        if not isinstance(child.tag, str):
            parts.append(child.tail or "")
            continue
        skip = child in furniture if furniture is not None else is_furniture(child)
        if child.tag != "a" and not skip and child.tag not in ("script", "style"):
            parts.append(_non_link_text(child, furniture))
        parts.append(child.tail or "")
    return " ".join(parts)


def sidebars(
    body: etree._Element, main: etree._Element, furniture: set[etree._Element]
) -> list[etree._Element]:
    """Columns beside `main` that carry rules, in document order: for each ancestor of `main`, its other
    children that are not furniture and whose own words (not their links') state a rule."""
    chain = []
    node = main
    while node is not None and node is not body:
        chain.append(node)
        node = node.getparent()
    chain.append(body)
    on_chain = set(chain)
    found = []
    for ancestor in chain[1:]:
        for child in ancestor:
            if not isinstance(child.tag, str) or child in on_chain or child in furniture:
                continue
            if child.tag in ("script", "style", "noscript", "template"):
                continue
            words = _non_link_text(child, furniture)
            if len(" ".join(words.split())) >= SIDEBAR_MIN_CHARS and RULE_WORDS.search(words):
                found.append(child)
    position = {el: i for i, el in enumerate(body.iter())}
    return sorted(found, key=lambda el: position.get(el, 0))


def drop_link_lists(root: etree._Element) -> None:
    """Remove list items and paragraphs that are nothing but links (a sidebar's menu), keeping the rest and
    any e-mail address or telephone number (where documents go is a rule)."""
    for el in list(root.iter("li", "p", "dd", "dt", "td")):
        if el.getparent() is None:
            continue
        own = _non_link_text(el)
        links = [a.get("href") or "" for a in el.iter("a")]
        contact = any(h.lower().startswith(("mailto:", "tel:")) for h in links)  # an address is content
        if not re.search(r"\w", own) and links and not contact:
            tail = el.tail
            parent = el.getparent()
            if tail and tail.strip():
                prev = el.getprevious()
                if prev is not None:
                    prev.tail = (prev.tail or "") + tail
                else:
                    parent.text = (parent.text or "") + tail
            parent.remove(el)
