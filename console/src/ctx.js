// The translator of the chosen language, for every page.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { translator } from "./i18n.js";

export const T = createContext(translator("en"));
export const useT = () => useContext(T);
