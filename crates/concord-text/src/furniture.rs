//! Page furniture: the lines a web page puts around an article that are not the article.
//!
//! Every rule looks at one normalized line (or, for duplicates and trailing labels, at the
//! line's place among the others) and is written for the kind of line, in several
//! languages, not for the exact strings of any one site. Rules that match words are
//! anchored: they need the phrase at the start of a short line, or the whole line to be
//! the phrase, so a sentence that merely contains "share" or "follow" stays.
//!
//! | rule | removes |
//! | --- | --- |
//! | no letters | lines of only digits, punctuation, bullets, symbols |
//! | URL only | lines made only of URLs or e-mail addresses |
//! | bracketed | a whole short line in brackets: `[Image source=…]`, `(Reporting by …)`, `(AFP)` |
//! | image | image credits and "view original image" / "agrandir" / "원본보기" links |
//! | share, social | "Share this article", "Partagez cet article", lines of only network names |
//! | subscribe | "Follow us", "Abonnez-vous", "Sign up for our newsletter", "구독" |
//! | cookie | cookie banners ("We use cookies", "Ce site utilise des cookies"), not news about cookies |
//! | copyright | `©` lines and "all rights reserved" in several languages |
//! | read more, advert | "Read more", "Lire aussi", "Читайте также", "Advertisement" |
//! | dateline, byline | "Updated 14:03 …", "by Name / Sep 19, 2015" |
//! | breadcrumb | "Home > World > Asia", "Accueil>>Chine" |
//! | meta pipe | short pipe-separated lines with a date, a credit or an agency: captions, bylines |
//! | translation note | a line about the text's own translation: "This article was machine-translated" |
//! | trailing labels | short lines without sentence punctuation after the last real line |
//! | duplicates | a repeated line or block of lines, and the title repeated as the first line |

use std::collections::HashMap;

/// Why a line was taken out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Furniture {
    NoLetters,
    UrlOnly,
    Bracketed,
    Image,
    Share,
    Subscribe,
    Cookie,
    Copyright,
    ReadMore,
    Dateline,
    Byline,
    Breadcrumb,
    MetaPipe,
    TranslationNote,
}

/// A body without its furniture, and how many non-empty lines were removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CleanBody {
    pub(crate) lines: Vec<String>,
    pub(crate) removed: usize,
}

/// The title without furniture: `None` when the whole title is furniture. A `|`-separated
/// title keeps its non-meta parts ("China acts | Reuters" becomes "China acts").
pub(crate) fn clean_title(title: &str) -> Option<String> {
    if title.is_empty() {
        return None;
    }
    if let Some(kept) = strip_meta_segments(title) {
        return (!kept.is_empty() && classify(&kept).is_none()).then_some(kept);
    }
    classify(title).is_none().then(|| title.to_owned())
}

/// Removes furniture lines, then duplicates, then trailing labels. `title` is the cleaned
/// title, so a body that repeats it as its first line loses that line.
pub(crate) fn clean_body(lines: Vec<String>, title: Option<&str>) -> CleanBody {
    let total = lines.len();
    let mut kept: Vec<String> = lines
        .into_iter()
        .filter(|l| classify(l).is_none())
        .collect();
    if let (Some(title), Some(first)) = (title, kept.first())
        && dup_key(first) == dup_key(title)
    {
        kept.remove(0);
    }
    let mut kept = drop_duplicates(kept, title);
    drop_trailing_labels(&mut kept);
    CleanBody {
        removed: total - kept.len(),
        lines: kept,
    }
}

/// The rule that makes `line` furniture, if any. `line` is one normalized line.
pub(crate) fn classify(line: &str) -> Option<Furniture> {
    let v = View::new(line);
    if !line.chars().any(char::is_alphabetic) {
        return Some(Furniture::NoLetters);
    }
    if line.split_whitespace().all(is_url_like) {
        return Some(Furniture::UrlOnly);
    }
    if is_bracketed(line) {
        return Some(Furniture::Bracketed);
    }
    if is_image(&v) {
        return Some(Furniture::Image);
    }
    if is_share(&v) {
        return Some(Furniture::Share);
    }
    if is_subscribe(&v) {
        return Some(Furniture::Subscribe);
    }
    if v.chars <= 400 && contains_any(&v.lower, COOKIE) {
        return Some(Furniture::Cookie);
    }
    if is_copyright(&v) {
        return Some(Furniture::Copyright);
    }
    if is_read_more(&v) {
        return Some(Furniture::ReadMore);
    }
    if v.chars <= 200
        && starts_with_any(&v.key, SELF_REFERENCE)
        && contains_any(&v.lower, TRANSLATION)
    {
        return Some(Furniture::TranslationNote);
    }
    // The rest recognise metadata lines, which never end like a sentence.
    if ends_sentence(line) {
        return None;
    }
    if v.chars <= 120 && has_digit(line) && starts_with_any(&v.key, DATELINE) {
        return Some(Furniture::Dateline);
    }
    if is_byline(&v) {
        return Some(Furniture::Byline);
    }
    if is_breadcrumb(&v) {
        return Some(Furniture::Breadcrumb);
    }
    if strip_meta_segments(line).is_some() {
        return Some(Furniture::MetaPipe);
    }
    None
}

/// A line prepared for matching: `key` is lowercase, with typographic apostrophes made
/// plain and leading and trailing non-alphanumeric characters (bullets, colons) removed.
struct View {
    lower: String,
    key: String,
    chars: usize,
    words: usize,
}

impl View {
    fn new(line: &str) -> Self {
        let lower = line.to_lowercase().replace(['’', '‘', 'ʼ'], "'");
        let key = lower
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_owned();
        Self {
            chars: line.chars().count(),
            words: line.split_whitespace().count(),
            lower,
            key,
        }
    }
}

/// `key` starts with `phrase` as whole words (the phrase may end in punctuation).
fn starts_with_phrase(key: &str, phrase: &str) -> bool {
    let Some(rest) = key.strip_prefix(phrase) else {
        return false;
    };
    let phrase_ends_in_word = phrase.chars().last().is_some_and(char::is_alphanumeric);
    !phrase_ends_in_word || !rest.chars().next().is_some_and(char::is_alphanumeric)
}

fn starts_with_any(key: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| starts_with_phrase(key, p))
}

fn contains_any(lower: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| lower.contains(p))
}

fn has_digit(line: &str) -> bool {
    line.chars().any(|c| c.is_ascii_digit())
}

/// Ends with sentence punctuation, possibly inside closing quotes or brackets.
pub(crate) fn ends_sentence(line: &str) -> bool {
    line.trim_end_matches(['"', '\'', '”', '’', '»', ')', ']', '」', '』', '》'])
        .ends_with(['.', '!', '?', '…', '。', '؟', '।', '։', '።', '۔'])
}

fn is_url_like(token: &str) -> bool {
    let t = token
        .trim_matches(['<', '>', '(', ')', '[', ']', '"', '\'', ',', ';'])
        .to_ascii_lowercase();
    t.starts_with("http://")
        || t.starts_with("https://")
        || t.starts_with("www.")
        || t.starts_with("ftp://")
        || t.starts_with("mailto:")
        || (t.contains('@') && t.contains('.') && !t.contains(char::is_whitespace))
}

/// The whole line is one bracketed group without sentence punctuation inside.
fn is_bracketed(line: &str) -> bool {
    const PAIRS: &[(char, char)] = &[
        ('(', ')'),
        ('[', ']'),
        ('【', '】'),
        ('〔', '〕'),
        ('<', '>'),
    ];
    if line.chars().count() > 160 {
        return false;
    }
    let mut chars = line.chars();
    let (Some(first), Some(last)) = (chars.next(), chars.next_back()) else {
        return false;
    };
    let inner = chars.as_str();
    PAIRS.iter().any(|&(open, close)| {
        first == open
            && last == close
            && !inner.contains([open, close])
            && !ends_sentence(inner.trim_end())
    })
}

const IMAGE_CREDIT: &[&str] = &[
    "image source",
    "image credit",
    "image courtesy",
    "image:",
    "photo credit",
    "photo courtesy",
    "photo by",
    "photo:",
    "photos:",
    "photograph:",
    "picture:",
    "pictured:",
    "credit:",
    "crédit photo",
    "crédits photo",
    "photo d'illustration",
    "crédit:",
    "foto:",
    "fotos:",
    "foto de",
    "crédito:",
    "créditos:",
    "bild:",
    "фото:",
    "фото -",
    "фото —",
    "사진=",
    "사진 =",
    "사진 출처",
    "사진제공",
    "사진 제공",
    "صورة:",
    "الصورة:",
    "صورة أرشيفية",
    "图片来源",
    "图片:",
    "图:",
    "写真:",
];

const VIEW_IMAGE: &[&str] = &[
    "view original image",
    "view original",
    "view larger image",
    "view image",
    "view gallery",
    "view photos",
    "enlarge image",
    "enlarge this image",
    "click to enlarge",
    "expand image",
    "voir l'image",
    "voir la photo",
    "agrandir l'image",
    "agrandir la photo",
    "ver imagen",
    "ver foto",
    "ampliar imagen",
    "ampliar foto",
    "ver imagem",
    "bild vergrößern",
    "bild anzeigen",
    "увеличить фото",
    "смотреть фото",
    "원본보기",
    "원본 보기",
    "사진 확대",
    "확대보기",
    "عرض الصورة",
    "تكبير الصورة",
    "查看原图",
    "点击查看大图",
    "查看大图",
];

/// Verbs that are an image link only as the whole line ("Ampliar la red" is a headline).
const VIEW_IMAGE_EXACT: &[&str] = &[
    "enlarge",
    "zoom",
    "agrandir",
    "ampliar",
    "vergrößern",
    "bildergalerie",
    "увеличить",
    "확대",
    "تكبير",
    "放大",
];

fn is_image(v: &View) -> bool {
    // Credits may say a photographer's name and agency; links say nothing more.
    let key = v.key.replace(" :", ":");
    (v.chars <= 120 && starts_with_any(&key, IMAGE_CREDIT))
        || (v.chars <= 40 && starts_with_any(&v.key, VIEW_IMAGE))
        || VIEW_IMAGE_EXACT.contains(&v.key.as_str())
}

/// Share buttons and their labels. Verbs that also mean something else ("شارك" is also
/// "took part") only count as the whole line or with a word that makes them a button.
const SHARE: &[&str] = &[
    "share this",
    "share on",
    "share via",
    "share article",
    "share story",
    "share the story",
    "share the article",
    "share:",
    "partagez",
    "partager cet",
    "partager sur",
    "partager l'article",
    "partager par",
    "compartir en",
    "compartir esta",
    "compartir este",
    "comparte esta",
    "comparte en",
    "compártelo",
    "compartilhe",
    "compartilhar no",
    "compartilhar esta",
    "compartilhar este",
    "partilhe",
    "artikel teilen",
    "diesen artikel teilen",
    "beitrag teilen",
    "seite teilen",
    "teilen auf",
    "jetzt teilen",
    "поделиться",
    "поделитесь",
    "공유하기",
    "기사 공유",
    "sns 공유",
    "카카오톡 공유",
    "페이스북 공유",
    "شارك المقال",
    "شارك الخبر",
    "شارك على",
    "شارك عبر",
    "شارك هذا",
    "مشاركة المقال",
    "مشاركة الخبر",
    "مشاركة عبر",
    "分享到",
    "分享至",
    "シェアする",
];

const SHARE_EXACT: &[&str] = &[
    "share",
    "partager",
    "partage",
    "compartir",
    "compartilhar",
    "partilhar",
    "teilen",
    "공유",
    "شارك",
    "مشاركة",
    "分享",
    "シェア",
];

/// Words that make up a row of share buttons.
const SOCIAL: &[&str] = &[
    "facebook",
    "twitter",
    "x",
    "linkedin",
    "whatsapp",
    "telegram",
    "email",
    "e-mail",
    "mail",
    "print",
    "imprimer",
    "imprimir",
    "drucken",
    "печать",
    "pinterest",
    "reddit",
    "vk",
    "vkontakte",
    "ok",
    "kakaotalk",
    "kakaostory",
    "kakao",
    "band",
    "line",
    "naver",
    "weibo",
    "wechat",
    "qq",
    "flipboard",
    "messenger",
    "tumblr",
    "instagram",
    "youtube",
    "tiktok",
    "threads",
    "bluesky",
    "mastodon",
    "copy",
    "link",
    "copier",
    "lien",
    "le",
    "url",
    "rss",
];

fn is_share(v: &View) -> bool {
    if v.chars > 80 {
        return false;
    }
    if SHARE_EXACT.contains(&v.key.as_str()) || starts_with_any(&v.key, SHARE) {
        return true;
    }
    let words: Vec<&str> = v
        .key
        .split(|c: char| c.is_whitespace() || matches!(c, '|' | '/' | '·' | '•' | ','))
        .filter(|w| !w.is_empty())
        .collect();
    words.len() <= 10
        && words.iter().any(|w| *w != "le" && *w != "x")
        && words.iter().all(|w| SOCIAL.contains(w))
}

const SUBSCRIBE: &[&str] = &[
    "follow us",
    "follow @",
    "follow our",
    "subscribe",
    "sign up",
    "get our newsletter",
    "get the newsletter",
    "join our",
    "download our app",
    "download the app",
    "suivez-nous",
    "suivez nous",
    "abonnez-vous",
    "abonnez vous",
    "s'abonner",
    "inscrivez-vous",
    "recevez notre",
    "téléchargez l'application",
    "síguenos",
    "suscríbete",
    "suscribirse",
    "regístrate",
    "descarga la app",
    "siga-nos",
    "assine",
    "inscreva-se",
    "folgen sie uns",
    "folge uns",
    "jetzt abonnieren",
    "abonnieren",
    "newsletter abonnieren",
    "подписывайтесь",
    "подпишитесь",
    "подписаться",
    "구독하기",
    "구독 신청",
    "تابعونا",
    "تابعنا",
    "اشترك الآن",
    "اشترك في النشرة",
    "اشترك في نشرتنا",
    "اشتركوا",
    "关注我们",
    "扫码关注",
];

/// Words that also name a subject of news ("구독 경제", subscription economy) count only as
/// the whole line.
const SUBSCRIBE_EXACT: &[&str] = &[
    "newsletter",
    "newsletters",
    "뉴스레터",
    "구독",
    "اشترك",
    "订阅",
];

const NEWSLETTER: &[&str] = &[
    "our newsletter",
    "notre newsletter",
    "nuestro boletín",
    "nossa newsletter",
    "unseren newsletter",
    "нашу рассылку",
    "نشرتنا",
];

fn is_subscribe(v: &View) -> bool {
    (v.chars <= 120
        && (SUBSCRIBE_EXACT.contains(&v.key.as_str()) || starts_with_any(&v.key, SUBSCRIBE)))
        || (v.chars <= 160 && contains_any(&v.lower, NEWSLETTER))
}

const COOKIE: &[&str] = &[
    "we use cookies",
    "this site uses cookies",
    "this website uses cookies",
    "our site uses cookies",
    "accept cookies",
    "accept all cookies",
    "cookie settings",
    "cookie preferences",
    "manage cookies",
    "nous utilisons des cookies",
    "ce site utilise des cookies",
    "ce site web utilise des cookies",
    "accepter les cookies",
    "gérer les cookies",
    "paramétrer les cookies",
    "utilizamos cookies",
    "usamos cookies",
    "este sitio web utiliza cookies",
    "este site utiliza cookies",
    "aceptar cookies",
    "aceitar cookies",
    "wir verwenden cookies",
    "diese website verwendet cookies",
    "cookies akzeptieren",
    "cookie-einstellungen",
    "мы используем файлы cookie",
    "сайт использует файлы cookie",
    "쿠키를 사용합니다",
    "نستخدم ملفات تعريف الارتباط",
    "يستخدم هذا الموقع ملفات تعريف الارتباط",
];
const COPYRIGHT: &[&str] = &[
    "all rights reserved",
    "tous droits réservés",
    "todos los derechos reservados",
    "todos os direitos reservados",
    "alle rechte vorbehalten",
    "все права защищены",
    "جميع الحقوق محفوظة",
    "무단전재",
    "무단 전재",
    "재배포 금지",
    "재배포금지",
    "版权所有",
    "版權所有",
    "do not reproduce",
    "may not be reproduced",
    "reproduction interdite",
    "prohibida su reproducción",
    "reprodução proibida",
    "перепечатка запрещена",
];

fn is_copyright(v: &View) -> bool {
    if v.chars > 200 {
        return false;
    }
    let starts = v.lower.starts_with('©')
        || v.lower.starts_with("(c)")
        || v.lower.strip_prefix("copyright").is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.starts_with('©')
                || rest.starts_with("(c)")
                || rest.starts_with(|c: char| c.is_ascii_digit())
        });
    starts || contains_any(&v.lower, COPYRIGHT)
}

const READ_MORE: &[&str] = &[
    "read more",
    "read also",
    "read next",
    "read the full",
    "see also",
    "related:",
    "more from",
    "click here",
    "lire aussi",
    "lire la suite",
    "à lire aussi",
    "a lire aussi",
    "à lire également",
    "voir aussi",
    "sur le même sujet",
    "cliquez ici",
    "leer más",
    "lea también",
    "lee también",
    "te puede interesar",
    "haga clic aquí",
    "leia mais",
    "leia também",
    "veja também",
    "clique aqui",
    "mehr zum thema",
    "lesen sie auch",
    "lesen sie mehr",
    "weiterlesen",
    "mehr lesen",
    "hier klicken",
    "читайте также",
    "читать далее",
    "читать также",
    "по теме:",
    "관련기사",
    "관련 기사",
    "더보기",
    "اقرأ أيضا",
    "اقرأ أيضاً",
    "اقرأ ايضا",
    "اقرأ المزيد",
    "相关新闻",
    "相关阅读",
    "阅读更多",
    "延伸阅读",
];

/// Navigation labels that are furniture when they are the whole line.
const NAV_EXACT: &[&str] = &[
    "related",
    "related articles",
    "related stories",
    "related news",
    "related content",
    "recommended",
    "most read",
    "most popular",
    "top stories",
    "latest news",
    "more stories",
    "you may also like",
    "advertisement",
    "advertising",
    "sponsored",
    "sponsored content",
    "les plus lus",
    "publicité",
    "lo más leído",
    "publicidad",
    "mais lidas",
    "publicidade",
    "meistgelesen",
    "anzeige",
    "werbung",
    "самое читаемое",
    "реклама",
    "많이 본 뉴스",
    "광고",
    "الأكثر قراءة",
    "إعلان",
    "广告",
];

fn is_read_more(v: &View) -> bool {
    v.chars <= 80 && (NAV_EXACT.contains(&v.key.as_str()) || starts_with_any(&v.key, READ_MORE))
}

/// A note about the article itself: it starts by naming the text ("This article", "Cet
/// article") and speaks of translation. A sentence about machine translation stays.
const SELF_REFERENCE: &[&str] = &[
    "this article",
    "this content",
    "this story",
    "this text",
    "this page",
    "cet article",
    "ce contenu",
    "ce texte",
    "este artículo",
    "este contenido",
    "este texto",
    "este artigo",
    "este conteúdo",
    "dieser artikel",
    "dieser beitrag",
    "dieser text",
    "эта статья",
    "этот материал",
    "данный материал",
    "이 기사",
    "본 기사",
    "이 콘텐츠",
    "هذا المقال",
    "هذا الخبر",
    "هذه المادة",
    "本文",
];

const TRANSLATION: &[&str] = &[
    "transl",
    "tradu",
    "übersetz",
    "перев",
    "번역",
    "ترجم",
    "翻译",
];
const DATELINE: &[&str] = &[
    "updated",
    "last updated",
    "published",
    "first published",
    "posted",
    "mis à jour",
    "dernière mise à jour",
    "publié",
    "actualizado",
    "publicado",
    "atualizado",
    "aktualisiert",
    "veröffentlicht",
    "stand:",
    "обновлено",
    "опубликовано",
    "입력",
    "수정",
    "기사입력",
    "최종수정",
    "تاريخ النشر",
    "آخر تحديث",
    "نشر في",
    "更新时间",
    "发布时间",
];

const BYLINE_START: &[&str] = &["by", "par", "por", "von", "di", "door", "przez", "от"];
const SEPARATORS: &[&str] = &[" / ", " | ", " · ", " • ", " — ", " – "];

fn is_byline(v: &View) -> bool {
    if v.chars > 120 {
        return false;
    }
    let by_and_more = starts_with_any(&v.key, BYLINE_START) && contains_any(&v.lower, SEPARATORS);
    // Korean reporter credit: "홍길동 기자", "베이징=홍길동 특파원".
    let reporter = v.chars <= 40 && (v.key.ends_with("기자") || v.key.ends_with("특파원"));
    by_and_more || reporter
}

const HOME: &[&str] = &[
    "home",
    "accueil",
    "page d'accueil",
    "inicio",
    "início",
    "startseite",
    "главная",
    "홈",
    "الرئيسية",
    "首页",
];

fn is_breadcrumb(v: &View) -> bool {
    if v.chars > 100 || v.words > 12 {
        return false;
    }
    // ">" and "»" also occur in headlines ("Inflation > 5%", French quotes): two of them.
    let arrows = v.lower.contains(">>")
        || v.lower.contains('›')
        || v.lower.matches(" > ").count() >= 2
        || (v.lower.matches(" » ").count() >= 2 && !v.lower.contains('«'));
    let slashes = v.lower.matches(" / ").count() >= 2 && starts_with_any(&v.key, HOME);
    arrows || slashes
}

/// Photo agencies and wire services that appear as a part of a caption or byline.
const AGENCY: &[&str] = &[
    "afp",
    "ap",
    "ap photo",
    "reuters",
    "epa",
    "epa-efe",
    "efe",
    "dpa",
    "ansa",
    "getty",
    "getty images",
    "afp via getty images",
    "shutterstock",
    "alamy",
    "istock",
    "xinhua",
    "yonhap",
    "kyodo",
    "tass",
    "ria novosti",
    "newsis",
    "news1",
    "bloomberg",
    "pool",
];

const CREDIT_START: &[&str] = &[
    "by:", "by", "photo", "photos", "foto", "credit", "crédit", "source:", "via", "фото", "사진",
];

/// For a short `|`-separated line, the parts that are not a date, a credit or an agency,
/// joined again; `None` when no part is such metadata (or the line is no such line).
fn strip_meta_segments(line: &str) -> Option<String> {
    if !line.contains('|') || line.chars().count() > 160 || ends_sentence(line) {
        return None;
    }
    let segments: Vec<&str> = line
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let is_meta = |segment: &str| {
        let v = View::new(segment);
        AGENCY.contains(&v.key.as_str())
            || starts_with_any(&v.key, CREDIT_START)
            || (has_digit(segment) && v.words <= 4)
    };
    if !segments.iter().any(|s| is_meta(s)) {
        return None;
    }
    let kept: Vec<&str> = segments.into_iter().filter(|s| !is_meta(s)).collect();
    Some(kept.join(" | "))
}

/// Duplicate lines compare without case and surrounding punctuation.
fn dup_key(line: &str) -> String {
    View::new(line).key
}

/// Lines at least this long are dropped whenever they repeat; shorter ones ("Yes.", a
/// name) only inside a repeated block, next to a dropped long line.
const DUP_MIN_CHARS: usize = 24;

fn drop_duplicates(lines: Vec<String>, title: Option<&str>) -> Vec<String> {
    let mut first_at: HashMap<String, usize> = HashMap::new();
    if let Some(title) = title {
        first_at.insert(dup_key(title), usize::MAX);
    }
    let repeated: Vec<bool> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let key = dup_key(line);
            match first_at.get(&key) {
                Some(_) => true,
                None => {
                    first_at.insert(key, i);
                    false
                }
            }
        })
        .collect();
    let mut drop: Vec<bool> = lines
        .iter()
        .zip(&repeated)
        .map(|(line, rep)| *rep && line.chars().count() >= DUP_MIN_CHARS)
        .collect();
    for i in 1..lines.len() {
        drop[i] |= repeated[i] && drop[i - 1];
    }
    for i in (0..lines.len().saturating_sub(1)).rev() {
        drop[i] |= repeated[i] && drop[i + 1];
    }
    lines
        .into_iter()
        .zip(drop)
        .filter_map(|(line, drop)| (!drop).then_some(line))
        .collect()
}

/// A short line that does not end like a sentence: a section label, a button.
fn is_label(line: &str) -> bool {
    line.split_whitespace().count() <= 5 && line.chars().count() <= 50 && !ends_sentence(line)
}

/// Drops the labels after the last real line ("Don't miss", "Today's briefing", "Votre
/// pseudo"): the page's next section starts there. A body of only labels is left alone.
fn drop_trailing_labels(lines: &mut Vec<String>) {
    if let Some(last_real) = lines.iter().rposition(|l| !is_label(l)) {
        lines.truncate(last_real + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_without_letters_and_url_only_lines_are_furniture() {
        for line in [
            "•",
            "---",
            "14/09/2020 08:40",
            "* * *",
            "https://example.com/a?b=1",
        ] {
            assert!(classify(line).is_some(), "{line}");
        }
        assert_eq!(
            classify("www.example.com http://x.y"),
            Some(Furniture::UrlOnly)
        );
        assert_eq!(classify("<news@example.com>"), Some(Furniture::UrlOnly));
        assert_eq!(classify("See https://example.com for details."), None);
    }

    #[test]
    fn bracketed_credit_lines_are_furniture_but_bracketed_openings_are_not() {
        assert_eq!(
            classify("[Image source=Reuters Yonhap News]"),
            Some(Furniture::Bracketed)
        );
        assert_eq!(
            classify("(Reporting by Jane Doe; Editing by John Roe)"),
            Some(Furniture::Bracketed)
        );
        assert_eq!(classify("[사진=연합뉴스]"), Some(Furniture::Bracketed));
        assert_eq!(classify("(AFP)"), Some(Furniture::Bracketed));
        assert_eq!(
            classify("[Seoul=Reporter Kim] The government said on Monday it would act."),
            None
        );
        assert_eq!(classify("(a) first point (b) second point"), None);
    }

    #[test]
    fn image_links_and_credits_in_several_languages() {
        for line in [
            "View original image",
            "Voir l’image",
            "Agrandir",
            "Ampliar",
            "Ampliar imagen",
            "Bild vergrößern",
            "Увеличить фото",
            "원본보기",
            "تكبير الصورة",
            "Photo: Getty Images",
            "Photo : AFP",
            "Crédit photo : Reuters",
            "Foto: EFE",
            "Фото: ТАСС",
            "사진 제공=연합뉴스",
            "صورة: رويترز",
        ] {
            assert_eq!(classify(line), Some(Furniture::Image), "{line}");
        }
        assert_eq!(
            classify("Photographers gathered outside the court on Monday."),
            None
        );
    }

    #[test]
    fn share_and_subscribe_buttons_in_several_languages() {
        for line in [
            "Share",
            "Share this article",
            "Share on Facebook",
            "Partagez cet article sur :",
            "Partager",
            "Compartir en Twitter",
            "Compartilhe",
            "Artikel teilen",
            "Поделиться",
            "공유하기",
            "شارك المقال",
            "分享到:",
            "Facebook Twitter LinkedIn Email",
            "Facebook | X | WhatsApp",
        ] {
            assert_eq!(classify(line), Some(Furniture::Share), "{line}");
        }
        for line in [
            "Follow us on Twitter",
            "Subscribe to our newsletter",
            "Sign up for the morning briefing",
            "Abonnez-vous à notre newsletter",
            "Suivez-nous sur Facebook",
            "Suscríbete",
            "Inscreva-se",
            "Folgen Sie uns auf Instagram",
            "Подпишитесь на наш канал",
            "구독하기",
            "구독",
            "تابعونا على تويتر",
        ] {
            assert_eq!(classify(line), Some(Furniture::Subscribe), "{line}");
        }
    }

    #[test]
    fn sentences_that_merely_contain_share_or_follow_stay() {
        for line in [
            "China's share of exports rose",
            "China's share of exports rose to 15% last year.",
            "Share prices fell sharply on Monday",
            "Shares of Tencent rose 3% in Hong Kong.",
            "The company will share data with regulators.",
            "Subscribers to the service grew by a third.",
            "Les deux pays partagent des informations sensibles.",
            "Le partage des données reste un sujet sensible.",
            "Compartir datos con Pekín preocupa a Washington.",
            "شارك الرئيس في القمة التي عقدت في بكين.",
            "اشترك في الاجتماع ممثلون عن عشرين دولة",
            "Follow-up talks are planned for October.",
            "Russia will follow China's lead, officials said.",
            "Facebook and Twitter were both fined by the regulator.",
            "X",
            "Copyright law is changing in Europe.",
        ] {
            assert_eq!(classify(line), None, "{line}");
        }
    }

    #[test]
    fn copyright_cookie_read_more_and_translation_notes() {
        for (line, want) in [
            (
                "© The Asia Business Daily(www.asiae.co.kr). All rights reserved.",
                Furniture::Copyright,
            ),
            (
                "© 2024 Korea Portal, All rights reserved. Do not reproduce without permission.",
                Furniture::Copyright,
            ),
            ("Copyright © 2020 Example Media", Furniture::Copyright),
            ("Copyright 2021 Example", Furniture::Copyright),
            ("(c) Example Media", Furniture::Copyright),
            ("Tous droits réservés", Furniture::Copyright),
            ("Todos los derechos reservados.", Furniture::Copyright),
            ("Alle Rechte vorbehalten.", Furniture::Copyright),
            ("Все права защищены.", Furniture::Copyright),
            ("جميع الحقوق محفوظة", Furniture::Copyright),
            ("C 연합뉴스, 무단전재 및 재배포 금지", Furniture::Copyright),
            (
                "We use cookies to improve your experience.",
                Furniture::Cookie,
            ),
            ("Ce site utilise des cookies.", Furniture::Cookie),
            ("Read more", Furniture::ReadMore),
            ("Read more: China's new data rules", Furniture::ReadMore),
            ("Lire aussi : la Chine et les données", Furniture::ReadMore),
            ("Leia também", Furniture::ReadMore),
            ("Читайте также:", Furniture::ReadMore),
            ("관련기사", Furniture::ReadMore),
            ("اقرأ أيضاً", Furniture::ReadMore),
            ("Advertisement", Furniture::ReadMore),
            ("Publicité", Furniture::ReadMore),
            (
                "This content was produced with the assistance of AI translation services.",
                Furniture::TranslationNote,
            ),
            (
                "Cet article a été traduit par traduction automatique.",
                Furniture::TranslationNote,
            ),
        ] {
            assert_eq!(classify(line), Some(want), "{line}");
        }
        for line in [
            "La CNIL a infligé une amende à Google pour l'usage des cookies.",
            "Google uses cookies to track users, the regulator said.",
            "Google improved its machine translation service on Tuesday.",
            "Machine translation firms raised $2 billion",
            "Related to the dispute, the ministry issued a statement.",
            "Recommended reading lists were published by the ministry.",
            "Read the statement carefully, the minister told reporters.",
        ] {
            assert_eq!(classify(line), None, "{line}");
        }
    }

    #[test]
    fn metadata_lines_datelines_bylines_breadcrumbs_captions() {
        for (line, want) in [
            ("Dernière mise à jour à 09h10 le 14/09", Furniture::Dateline),
            ("Updated 14:03 GMT, 9 September 2020", Furniture::Dateline),
            ("Publicado el 9 de septiembre de 2020", Furniture::Dateline),
            ("입력 2020.09.08 14:03", Furniture::Dateline),
            (
                "by Czarelli Tuason / Sep 19, 2015 03:53 AM EDT",
                Furniture::Byline,
            ),
            ("Par Jean Dupont | 9 septembre 2020", Furniture::Byline),
            ("홍길동 기자", Furniture::Byline),
            ("Page d'accueil>>Chine", Furniture::Breadcrumb),
            ("Home > World > Asia", Furniture::Breadcrumb),
            ("Accueil » Monde » Asie", Furniture::Breadcrumb),
            ("Accueil › International", Furniture::Breadcrumb),
            ("Home / World / Asia", Furniture::Breadcrumb),
            ("Xinhua | 14.09.2020 08h40", Furniture::MetaPipe),
            (
                "U.S. President Barack Obama visits China | By: Feng Li | Getty Images",
                Furniture::MetaPipe,
            ),
        ] {
            assert_eq!(classify(line), Some(want), "{line}");
        }
        for line in [
            "By 2030, China wants to lead in artificial intelligence.",
            "Updated rules were published on Tuesday.",
            "Published in 2019, the report found 3 flaws.",
            "« Global Initiative on Data Security » : la Chine propose des règles",
            "Wang said: the proposal | is open to all.",
            "Inflation > 5% in June",
            "Ampliar la red de metro costará 2.000 millones",
            "Agrandir le port de Marseille",
            "구독 경제가 빠르게 성장하고 있다",
            "Comparte Pekín la preocupación de Washington",
        ] {
            assert_eq!(classify(line), None, "{line}");
        }
    }

    #[test]
    fn title_keeps_its_non_meta_parts() {
        assert_eq!(
            clean_title("China acts on data | Reuters").as_deref(),
            Some("China acts on data")
        );
        assert_eq!(
            clean_title("China acts on data").as_deref(),
            Some("China acts on data")
        );
        assert_eq!(
            clean_title("Share prices fall").as_deref(),
            Some("Share prices fall")
        );
        assert_eq!(clean_title("Xinhua | 14.09.2020"), None);
        assert_eq!(clean_title("View original image"), None);
        assert_eq!(clean_title(""), None);
    }

    #[test]
    fn duplicate_lines_and_blocks_keep_the_first_occurrence() {
        let body = lines(
            "First paragraph about the initiative.\n\
             Second paragraph, also long enough.\n\
             Short one.\n\
             Third paragraph with more words in it.\n\
             Second paragraph, also long enough.\n\
             Short one.\n\
             Third paragraph with more words in it.\n\
             Closing paragraph of the article.",
        );
        let got = clean_body(body, None);
        assert_eq!(
            got.lines,
            lines(
                "First paragraph about the initiative.\n\
                 Second paragraph, also long enough.\n\
                 Short one.\n\
                 Third paragraph with more words in it.\n\
                 Closing paragraph of the article."
            )
        );
        assert_eq!(got.removed, 3);
    }

    #[test]
    fn short_repeats_outside_blocks_stay() {
        let body = lines("Was it planned?\nNo.\nWas it approved by the board?\nNo.");
        let got = clean_body(body.clone(), None);
        assert_eq!(got.lines, body);
        assert_eq!(got.removed, 0);
    }

    #[test]
    fn title_repeated_as_first_body_line_goes() {
        let body =
            lines("China proposes data rules.\nChina proposes data rules for all countries.");
        let got = clean_body(body, Some("China proposes data rules"));
        assert_eq!(got.lines, ["China proposes data rules for all countries."]);
        assert_eq!(got.removed, 1);
    }

    #[test]
    fn trailing_labels_go_but_a_body_of_labels_stays() {
        let body = lines(
            "The minister spoke in Beijing on Tuesday.\nHe said more later.\n• Your name\nDon't Miss\nMost Shared",
        );
        let got = clean_body(body, None);
        assert_eq!(
            got.lines,
            lines("The minister spoke in Beijing on Tuesday.\nHe said more later.")
        );
        assert_eq!(got.removed, 3);
        let labels = lines("Breaking news\nMore soon");
        assert_eq!(clean_body(labels.clone(), None).lines, labels);
    }
}
