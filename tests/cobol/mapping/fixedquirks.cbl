000100     IDENTIFICATION DIVISION.                                     IGNORED-TEXT-AFTER-72
000200     PROGRAM-ID. FIXEDQ.                                          
000300*    A comment line with PIC 9 CR that must be ignored.           
000400     DATA DIVISION.                                               
000500     LINKAGE SECTION.                                             
000600/    page eject comment                                           
000700     01 LK-REC.                                                   
000800        05 LK-TEXT PIC X(70) VALUE "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDE
000900-   "JKL".                                                        
001000D       05 LK-DEBUG PIC X(99).                                    
001100        05 LK-NUM  PIC 9(4).                                       PIC X(9) ZZZZ
001200        05 LK-SPLIT PIC S9(3)                                     
001300            COMP-3. *> an inline comment                          
       PROCEDURE DIVISION USING LK-REC.
           GOBACK.
