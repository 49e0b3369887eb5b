//! A seeded synthetic news stream: events reported several times, in several
//! languages, with near-duplicate titles (another outlet, an updated number).

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

use crate::rng::Rng;

/// One article as the harness submits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub external_id: String,
    pub title: String,
    pub body: String,
    /// ISO 639-1; `None` for the few the service must detect itself.
    pub lang: Option<&'static str>,
    pub published_at: Timestamp,
    pub source: &'static str,
    /// Which synthetic event it reports (the harness never sends this).
    pub event: usize,
}

impl Article {
    /// The `POST /v1/articles` body.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "external_id": self.external_id,
            "title": self.title,
            "body": self.body,
            "published_at": self.published_at.to_string(),
            "source": self.source,
        });
        if let (Some(lang), Some(obj)) = (self.lang, v.as_object_mut()) {
            obj.insert("lang".into(), lang.into());
        }
        v
    }
}

const LANGS: [&str; 6] = ["en", "fr", "de", "es", "it", "pt"];
const OUTLETS: [&str; 8] = [
    "Reuters",
    "AFP",
    "dpa",
    "EFE",
    "ANSA",
    "Lusa",
    "AP",
    "Bloomberg",
];
const CITIES: [&str; 24] = [
    "Lisbon",
    "Porto",
    "Madrid",
    "Seville",
    "Lyon",
    "Marseille",
    "Hamburg",
    "Munich",
    "Milan",
    "Naples",
    "Valencia",
    "Bordeaux",
    "Cologne",
    "Turin",
    "Bilbao",
    "Coimbra",
    "Nantes",
    "Leipzig",
    "Genoa",
    "Malaga",
    "Toulouse",
    "Dresden",
    "Bologna",
    "Braga",
];
const NAMES: [&str; 10] = [
    "Maria Santos",
    "Jean Dupont",
    "Klaus Weber",
    "Lucia Romano",
    "Pablo Ortega",
    "Ana Costa",
    "Marc Lefevre",
    "Sofia Bianchi",
    "Jonas Keller",
    "Ines Moreno",
];

/// Title templates per event kind, in `LANGS` order: `{c}` city, `{n}` number, `{p}` person.
const KINDS: [[&str; 6]; 8] = [
    [
        "Magnitude {m} earthquake strikes near {c}, {n} dead",
        "Un séisme de magnitude {m} frappe près de {c}, {n} morts",
        "Erdbeben der Stärke {m} erschüttert {c}, {n} Tote",
        "Un terremoto de magnitud {m} sacude {c}, {n} muertos",
        "Terremoto di magnitudo {m} colpisce {c}, {n} morti",
        "Terremoto de magnitude {m} atinge {c}, {n} mortos",
    ],
    [
        "Floods in {c} force {n} people from their homes",
        "Inondations à {c} : {n} personnes évacuées",
        "Hochwasser in {c}: {n} Menschen evakuiert",
        "Inundaciones en {c} obligan a evacuar a {n} personas",
        "Alluvione a {c}, evacuate {n} persone",
        "Enchentes em {c} deixam {n} desalojados",
    ],
    [
        "{p} wins {c} mayoral election with {n} percent",
        "{p} remporte la mairie de {c} avec {n} % des voix",
        "{p} gewinnt Bürgermeisterwahl in {c} mit {n} Prozent",
        "{p} gana la alcaldía de {c} con el {n} por ciento",
        "{p} vince le elezioni comunali a {c} con il {n} per cento",
        "{p} vence eleição para prefeito de {c} com {n} por cento",
    ],
    [
        "Transport workers in {c} begin {n}-day strike",
        "Les agents des transports de {c} entament une grève de {n} jours",
        "Verkehrsbeschäftigte in {c} beginnen {n}-tägigen Streik",
        "Los trabajadores del transporte de {c} inician una huelga de {n} días",
        "I lavoratori dei trasporti di {c} iniziano uno sciopero di {n} giorni",
        "Trabalhadores dos transportes de {c} iniciam greve de {n} dias",
    ],
    [
        "Wildfire near {c} burns {n} hectares",
        "Un incendie près de {c} ravage {n} hectares",
        "Waldbrand bei {c} vernichtet {n} Hektar",
        "Un incendio cerca de {c} arrasa {n} hectáreas",
        "Incendio vicino a {c} brucia {n} ettari",
        "Incêndio perto de {c} queima {n} hectares",
    ],
    [
        "Train derails near {c}, {n} injured",
        "Un train déraille près de {c}, {n} blessés",
        "Zug entgleist bei {c}, {n} Verletzte",
        "Descarrila un tren cerca de {c}, {n} heridos",
        "Treno deragliato vicino a {c}, {n} feriti",
        "Trem descarrila perto de {c}, {n} feridos",
    ],
    [
        "Carmaker to cut {n} jobs at its {c} plant",
        "Le constructeur automobile va supprimer {n} emplois dans son usine de {c}",
        "Autobauer streicht {n} Stellen im Werk {c}",
        "El fabricante de coches recortará {n} empleos en su planta de {c}",
        "La casa automobilistica taglierà {n} posti nello stabilimento di {c}",
        "Montadora vai cortar {n} empregos na fábrica de {c}",
    ],
    [
        "{c} hosts climate summit, leaders pledge {n} billion",
        "{c} accueille un sommet sur le climat, {n} milliards promis",
        "Klimagipfel in {c}: Staats- und Regierungschefs sagen {n} Milliarden zu",
        "{c} acoge una cumbre climática con {n} mil millones prometidos",
        "{c} ospita il vertice sul clima, promessi {n} miliardi",
        "{c} recebe cúpula do clima com {n} bilhões prometidos",
    ],
];

/// Body sentences per language: `{o}` outlet, `{c}` city.
const BODIES: [&str; 6] = [
    "{o} reports from {c}; officials expect more details later today.",
    "{o} rapporte depuis {c} ; les autorités attendent plus de détails dans la journée.",
    "{o} berichtet aus {c}; die Behörden erwarten im Laufe des Tages weitere Einzelheiten.",
    "{o} informa desde {c}; las autoridades esperan más detalles a lo largo del día.",
    "{o} riferisce da {c}; le autorità attendono ulteriori dettagli in giornata.",
    "{o} relata de {c}; as autoridades esperam mais detalhes ao longo do dia.",
];

/// `n` articles from `seed`: events of 3 to 6 reports each, at least two
/// languages per event, every title distinct, in publication order.
pub fn corpus(seed: u64, n: usize) -> Vec<Article> {
    let mut rng = Rng::new(seed);
    let start: Timestamp = Timestamp::from_second(1_709_251_200).unwrap_or(Timestamp::UNIX_EPOCH); // 2024-03-01
    let mut titles = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut event = 0;
    while out.len() < n {
        let kind = rng.below(KINDS.len());
        let city = *rng.pick(&CITIES);
        let person = *rng.pick(&NAMES);
        let number = 3 + rng.below(200);
        let magnitude = format!("{}.{}", 4 + rng.below(4), rng.below(10));
        // a few events a day over two months
        let at = start
            .checked_add(SignedDuration::from_secs(
                (event as i64 / 4) * 86_400 + rng.below(20 * 3600) as i64,
            ))
            .unwrap_or(start);
        let reports = 3 + rng.below(4);
        let first_lang = rng.below(LANGS.len());
        for r in 0..reports {
            if out.len() == n {
                break;
            }
            // the second report is always in another language
            let lang = match r {
                0 => first_lang,
                1 => (first_lang + 1 + rng.below(LANGS.len() - 1)) % LANGS.len(),
                _ => rng.below(LANGS.len()),
            };
            let outlet = *rng.pick(&OUTLETS);
            // later reports sometimes carry an updated number
            let count = number
                + if r > 0 && rng.chance(0.3) {
                    1 + rng.below(3)
                } else {
                    0
                };
            let base = KINDS[kind][lang]
                .replace("{c}", city)
                .replace("{n}", &count.to_string())
                .replace("{p}", person)
                .replace("{m}", &magnitude);
            let mut title = format!("{base} - {outlet}");
            let mut k = 2;
            while !titles.insert(title.clone()) {
                title = format!("{base} - {outlet} ({k})");
                k += 1;
            }
            let published_at = at
                .checked_add(SignedDuration::from_secs(rng.below(6 * 3600) as i64))
                .unwrap_or(at);
            out.push(Article {
                external_id: format!("crash-{seed}-{}", out.len()),
                title,
                body: BODIES[lang].replace("{o}", outlet).replace("{c}", city),
                // a few leave the language to detection
                lang: (!rng.chance(0.15)).then_some(LANGS[lang]),
                published_at,
                source: outlet,
                event,
            });
        }
        event += 1;
    }
    out.sort_by_key(|a| a.published_at);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::corpus;

    #[test]
    fn same_seed_same_stream_and_titles_distinct() {
        let a = corpus(7, 400);
        assert_eq!(a, corpus(7, 400));
        assert_ne!(a, corpus(8, 400));
        assert_eq!(a.len(), 400);
        let titles: HashSet<_> = a.iter().map(|x| &x.title).collect();
        assert_eq!(titles.len(), a.len());
        let ids: HashSet<_> = a.iter().map(|x| &x.external_id).collect();
        assert_eq!(ids.len(), a.len());
    }

    #[test]
    fn events_have_near_duplicates_in_several_languages() {
        let a = corpus(3, 300);
        let mut events: HashMap<usize, Vec<_>> = HashMap::new();
        for x in &a {
            events.entry(x.event).or_default().push(x);
        }
        let multi = events.values().filter(|v| v.len() >= 3).count();
        assert!(multi * 2 > events.len(), "most events have 3+ reports");
        let crosslingual = events
            .values()
            .filter(|v| {
                v.iter()
                    .filter_map(|x| x.lang)
                    .collect::<HashSet<_>>()
                    .len()
                    >= 2
            })
            .count();
        assert!(crosslingual * 2 > events.len());
    }
}
